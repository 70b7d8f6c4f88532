package signature

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"
)

// DefaultMaxBodyBytes is the body limit of a [Verifier] whose MaxBodyBytes is
// zero. The gateway takes request bodies up to 1 MiB by default, and a stored
// event can be larger than the request that carried it (binary CloudEvents
// data is kept as base64), so the default leaves room.
const DefaultMaxBodyBytes = 4 << 20

// Verifier verifies the requests a webhook receiver gets, for use as
// middleware ([Verifier.Middleware]) or per request
// ([Verifier.VerifyRequest]). It reads the clock with time.Now.
//
// A Verifier is safe for concurrent use as long as its fields are not changed
// after its first use; Middleware copies them when it is called.
type Verifier struct {
	// Secrets are the secrets to accept: usually one, two while the sender
	// rotates (the new one and the old one).
	Secrets []Secret
	// Tolerance is how far webhook-timestamp may be from now; zero or less
	// means DefaultTolerance.
	Tolerance time.Duration
	// MaxBodyBytes is the most body that is read; zero or less means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// VerifyRequest reads r's body, at most MaxBodyBytes of it, and verifies it
// and r's headers with [Verify] at time.Now. It returns the body, and puts
// an in-memory copy of it back in r.Body so that handlers can read it again.
//
// Besides Verify's errors it returns a *[http.MaxBytesError] when the body is
// over the limit, or the error reading it; in those cases r.Body has been
// partly consumed and is not restored.
func (v *Verifier) VerifyRequest(r *http.Request) ([]byte, error) {
	return v.verifyRequest(nil, r)
}

func (v *Verifier) verifyRequest(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			return nil, err
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, Verify(v.Secrets, r.Header, body, time.Now(), v.Tolerance)
}

// Middleware returns a handler that verifies each request before passing it
// to next, with the body restored in r.Body. Requests that fail get no
// further: 413 when the body is over MaxBodyBytes, 400 for a body that could
// not be read or a failed verification (the text says which check failed,
// never anything about the secrets). Any non-2xx answer makes the gateway
// retry the delivery later.
//
// Middleware has the shape func(http.Handler) http.Handler, so v.Middleware
// can be passed to routers as is. It panics if v has no non-zero secret, as
// that is a setup mistake that would reject every request.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	cfg := *v
	cfg.Secrets = append([]Secret(nil), v.Secrets...)
	usable := false
	for _, s := range cfg.Secrets {
		usable = usable || s.k != nil
	}
	if !usable {
		panic("signature: Verifier.Middleware needs at least one parsed secret")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := cfg.verifyRequest(w, r)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		case isVerifyError(err):
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		}
	})
}

func isVerifyError(err error) bool {
	for _, e := range [...]error{ErrMissingHeaders, ErrInvalidTimestamp, ErrTimestampTooOld, ErrTimestampTooNew, ErrNoMatchingSignature} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
