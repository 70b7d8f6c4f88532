package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/httprate"
	"github.com/prometheus/client_golang/prometheus"
)

// inflightLimit caps the requests being handled at once (streams are not
// counted: the hub bounds them). A request over the cap is answered at once
// with 503, Retry-After and a problem document, never queued. chi's
// Throttle does the same but answers in plain text; the contract wants
// problem+json on every error.
func inflightLimit(limit int, rejected prometheus.Counter) func(http.Handler) http.Handler {
	tokens := make(chan struct{}, limit)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case tokens <- struct{}{}:
				defer func() { <-tokens }()
				next.ServeHTTP(w, r)
			default:
				rejected.Inc()
				w.Header().Set("Retry-After", "1")
				fail(w, http.StatusServiceUnavailable, fmt.Sprintf("the gateway is handling %d requests already; retry shortly", limit))
			}
		})
	}
}

// ingestLimiter limits ingest to perSecond events per second per API key
// (per client IP when the API is open); a batch counts as its events. The
// sliding window is one second, or long enough to hold one full batch
// (maxBatch/perSecond seconds) so that every allowed batch can pass; the
// limit is perSecond times the window.
type ingestLimiter struct {
	limiter  *httprate.RateLimiter
	perSec   int
	rejected prometheus.Counter
}

func newIngestLimiter(perSecond, maxBatch int, rejected prometheus.Counter) *ingestLimiter {
	window := max(1, (maxBatch+perSecond-1)/perSecond)
	return &ingestLimiter{
		limiter: httprate.NewRateLimiter(perSecond*window, time.Duration(window)*time.Second,
			httprate.WithResponseHeaders(httprate.ResponseHeaders{
				Limit: "RateLimit-Limit", Remaining: "RateLimit-Remaining", Reset: "RateLimit-Reset", RetryAfter: "Retry-After",
			})),
		perSec:   perSecond,
		rejected: rejected,
	}
}

// allow counts n events for r's client; over the limit it writes the 429
// problem (headers included) and returns false.
func (l *ingestLimiter) allow(w http.ResponseWriter, r *http.Request, n int) bool {
	if l == nil {
		return true
	}
	key := "ip:" + clientIP(r)
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		sum := sha256.Sum256([]byte(bearer)) // never keep keys in the limiter's map
		key = "key:" + hex.EncodeToString(sum[:8])
	}
	if !l.limiter.OnLimit(w, r.WithContext(httprate.WithIncrement(r.Context(), n)), key) {
		return true
	}
	l.rejected.Inc()
	fail(w, http.StatusTooManyRequests, fmt.Sprintf("over the ingest rate limit of %d events per second; retry after the Retry-After delay", l.perSec))
	return false
}

func clientIP(r *http.Request) string {
	// The TCP peer (not a header: those are spoofable). Behind a proxy
	// every client shares the proxy's address.
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
