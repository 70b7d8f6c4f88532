package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the API's Prometheus metrics.
type httpMetrics struct {
	events                       *prometheus.CounterVec
	accepted, duplicate, invalid prometheus.Counter // children of events, resolved once
	ingestDur                    prometheus.Histogram
	requests                     *prometheus.CounterVec
	reqDur                       *prometheus.HistogramVec
	limited                      *prometheus.CounterVec
	series                       sync.Map // routeKey → routeSeries
}

func newHTTPMetrics(reg prometheus.Registerer, log store.Log, capacity func() int) *httpMetrics {
	m := &httpMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_events_ingested_total",
			Help: "Events received on POST /v1/events, by result: accepted (stored), duplicate (idempotent repeat), rejected (invalid or too large).",
		}, []string{"result"}),
		ingestDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventgate_ingest_duration_seconds",
			Help:    "Time from request start to stored, per accepted POST /v1/events request.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		reqDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventgate_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern (streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.accepted, m.duplicate, m.invalid = m.events.WithLabelValues("accepted"), m.events.WithLabelValues("duplicate"), m.events.WithLabelValues("rejected")
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventgate_http_limited_total",
		Help: "Requests refused by a limit: inflight (503, --max-inflight) or rate (429, --ingest-rate).",
	}, []string{"limit"})
	reg.MustRegister(m.limited)
	bound := func(name, help string, f func(store.Bounds) uint64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(log.Bounds())) })
	}
	reg.MustRegister(m.events, m.ingestDur, m.requests, m.reqDur,
		bound("eventgate_buffer_oldest_seq", "Oldest seq still in the log (0 when empty).", func(b store.Bounds) uint64 { return b.Oldest }),
		bound("eventgate_buffer_newest_seq", "Newest seq in the log (0 when empty).", func(b store.Bounds) uint64 { return b.Newest }),
		bound("eventgate_buffer_events", "Events held in the log now.", func(b store.Bounds) uint64 {
			if b.Newest == 0 {
				return 0
			}
			return b.Newest - b.Oldest + 1
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventgate_buffer_capacity_events", Help: "Events the log holds at most (--buffer-size)."},
			func() float64 { return float64(capacity()) }),
	)
	if b, ok := log.(byteBudget); ok {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventgate_buffer_bytes", Help: "Bytes the events held in the log count for (JSON, id, type, source and a fixed overhead each)."},
				func() float64 { return float64(b.HeldBytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventgate_buffer_capacity_bytes", Help: "Bytes the log holds at most (--buffer-bytes)."},
				func() float64 { return float64(b.MaxBytes()) }),
		)
	}
	if t, ok := log.(tailCache); ok {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventgate_nats_tail_events", Help: "Events the NATS store keeps in memory for the readers following the log."},
				func() float64 { n, _ := t.Tail(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventgate_nats_tail_bytes", Help: "Bytes of JSON the NATS store keeps in memory for the readers following the log."},
				func() float64 { _, b := t.Tail(); return float64(b) }),
		)
	}
	return m
}

// tailCache is a log that keeps its newest events in memory for the
// readers following it (natsjs.Log).
type tailCache interface {
	Tail() (events int, bytes int64)
}

// byteBudget is a log that holds its events within a budget of bytes and
// says how much of it is used (store.Ring).
type byteBudget interface {
	HeldBytes() int64
	MaxBytes() int64
}

func (m *httpMetrics) ingested(accepted, dups int, d time.Duration) {
	m.accepted.Add(float64(accepted))
	m.duplicate.Add(float64(dups))
	m.ingestDur.Observe(d.Seconds())
}

func (m *httpMetrics) rejected(n int) { m.invalid.Add(float64(n)) }

// instrument counts every request by chi route pattern and code.
func (m *httpMetrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil {
			if p := rc.RoutePattern(); p != "" {
				route = p
			}
		}
		code := ww.Status()
		if code == 0 {
			code = http.StatusOK
		}
		rm := m.route(route, r.Method, code)
		rm.requests.Inc()
		if code != http.StatusSwitchingProtocols && ww.Header().Get("Content-Type") != "text/event-stream" {
			rm.duration.Observe(time.Since(start).Seconds())
		}
	})
}

// routeKey names one series of eventgate_http_requests_total.
type routeKey struct {
	route, method string
	code          int
}

// routeSeries are the metric children of one routeKey.
type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// route returns the children for a request, resolved once per key: the
// label lookup (hashing three strings) would cost every request. Keys are
// bounded: route patterns, methodLabel's methods, and status codes.
func (m *httpMetrics) route(route, method string, code int) routeSeries {
	k := routeKey{route, methodLabel(method), code}
	if rs, ok := m.series.Load(k); ok {
		return rs.(routeSeries)
	}
	rs := routeSeries{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(code)),
		duration: m.reqDur.WithLabelValues(k.route),
	}
	m.series.Store(k, rs)
	return rs
}

// methodLabel bounds the method label: clients choose r.Method, and every
// distinct value would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
