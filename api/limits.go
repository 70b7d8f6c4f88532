package api

import (
	"container/list"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// DefaultIngestClients is how many per-client ingest buckets are kept when
// Config.IngestClients is zero.
const DefaultIngestClients = 10000

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

// ingestLimiter limits ingest per client with a token bucket (GCRA): each
// client's bucket holds at most burst events and refills at perSec events
// a second; a batch takes as many tokens as it has events, all or none.
// A client is identity(r): the API key auth accepted, or the TCP peer's
// address when the API is open.
//
// Buckets are kept for at most maxClients clients, least recently used
// first out. An evicted client starts again with a full bucket, which is
// what a client idle for burst/perSec seconds has anyway.
//
// Safe for concurrent use.
type ingestLimiter struct {
	perSec     rate.Limit
	burst      int
	maxClients int
	rejected   prometheus.Counter
	evicted    prometheus.Counter

	mu      sync.Mutex
	buckets map[string]*list.Element // of *clientBucket, in lru
	lru     list.List                // front: most recently used
}

type clientBucket struct {
	id  string
	lim *rate.Limiter
}

func newIngestLimiter(perSecond, burst, maxClients int, reg prometheus.Registerer, rejected prometheus.Counter) *ingestLimiter {
	l := &ingestLimiter{
		perSec: rate.Limit(perSecond), burst: burst, maxClients: maxClients, rejected: rejected,
		buckets: map[string]*list.Element{},
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_ingest_limiter_evictions_total",
			Help: "Ingest rate-limit buckets dropped to keep at most the bucket cap (least recently used first).",
		}),
	}
	reg.MustRegister(l.evicted, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventgate_ingest_limiter_buckets",
		Help: "Clients (API keys, or addresses when open) with an ingest rate-limit bucket held now.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(len(l.buckets))
	}))
	return l
}

// bucket returns id's limiter, creating it (full) when it has none.
func (l *ingestLimiter) bucket(id string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.buckets[id]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*clientBucket).lim
	}
	for len(l.buckets) >= l.maxClients {
		old := l.lru.Back()
		delete(l.buckets, old.Value.(*clientBucket).id)
		l.lru.Remove(old)
		l.evicted.Inc()
	}
	b := &clientBucket{id: id, lim: rate.NewLimiter(l.perSec, l.burst)}
	l.buckets[id] = l.lru.PushFront(b)
	return b.lim
}

// allow takes n events from r's client's bucket; when the bucket cannot
// give them it writes the 429 problem (headers included) and returns
// false. A nil limiter allows everything.
func (l *ingestLimiter) allow(w http.ResponseWriter, r *http.Request, n int) bool {
	if l == nil {
		return true
	}
	now := time.Now()
	lim := l.bucket(identity(r))
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(l.burst))
	if n <= l.burst && lim.AllowN(now, n) {
		h.Set("RateLimit-Remaining", strconv.Itoa(int(max(0, lim.TokensAt(now)))))
		h.Set("RateLimit-Reset", strconv.FormatInt(l.fullAt(now, lim.TokensAt(now)).Unix(), 10))
		return true
	}
	l.rejected.Inc()
	tokens := lim.TokensAt(now)
	h.Set("RateLimit-Remaining", strconv.Itoa(int(max(0, tokens))))
	h.Set("RateLimit-Reset", strconv.FormatInt(l.fullAt(now, tokens).Unix(), 10))
	if n > l.burst {
		// Never possible: waiting does not help, a smaller batch does.
		h.Set("Retry-After", retryAfter(float64(l.burst)/float64(l.perSec)))
		fail(w, http.StatusTooManyRequests, fmt.Sprintf(
			"the batch holds %d events, more than the ingest burst of %d (--ingest-burst) allows at once; send batches of at most %d events, at most %d events per second (--ingest-rate)",
			n, l.burst, l.burst, int(l.perSec)))
		return false
	}
	h.Set("Retry-After", retryAfter((float64(n)-tokens)/float64(l.perSec)))
	fail(w, http.StatusTooManyRequests, fmt.Sprintf(
		"over the ingest rate limit of %d events per second with bursts of %d (--ingest-rate, --ingest-burst); retry after the Retry-After delay",
		int(l.perSec), l.burst))
	return false
}

// fullAt is when a bucket holding tokens is full again.
func (l *ingestLimiter) fullAt(now time.Time, tokens float64) time.Time {
	missing := max(0, float64(l.burst)-tokens)
	return now.Add(time.Duration(missing / float64(l.perSec) * float64(time.Second)))
}

// retryAfter words a wait of secs seconds as Retry-After: whole seconds,
// rounded up, at least 1.
func retryAfter(secs float64) string {
	return strconv.Itoa(max(1, int(math.Ceil(secs))))
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
