// Package signature signs and verifies webhook deliveries with the Standard
// Webhooks scheme (https://www.standardwebhooks.com), version v1 (HMAC-SHA256).
//
// A delivery carries three headers:
//
//	webhook-id:        the message id, the same on every retry
//	webhook-timestamp: Unix seconds of this attempt
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//
// where key is the base64-decoded part of a "whsec_…" secret. The signature
// header may hold several space-separated signatures, one per secret, so that
// a secret can be rotated without downtime: a receiver accepts the request if
// any one of them matches any secret it knows.
//
// The gateway calls [SetHeaders] (or [Sign], [Header]) on every attempt.
// Receivers written in Go can import this package, which depends on the
// standard library only, and verify with [Verify] or a [Verifier]:
//
//	secret, err := signature.ParseSecret(os.Getenv("EVENTGATE_WEBHOOK_SECRET"))
//	if err != nil {
//		return err
//	}
//	v := &signature.Verifier{Secrets: []signature.Secret{secret}}
//	mux := http.NewServeMux()
//	mux.Handle("POST /hooks/eventgate", v.Middleware(hooksHandler))
//
// Behind the middleware, hooksHandler reads the verified body from r.Body as
// usual. Verification proves who sent a request and that it is recent; it
// does not stop a valid request from being delivered twice (every delivery is
// at least once), so receivers de-duplicate on the webhook-id header.
package signature
