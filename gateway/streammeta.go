package gateway

import (
	"strconv"

	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// MetaKind names a stream line that is not an event.
type MetaKind uint8

// The meta line kinds of a stream (see openapi.yaml, StreamLine).
const (
	// MetaHello opens every stream: {"hello":{"epoch":E,"oldest":O,"newest":M}}.
	MetaHello MetaKind = iota + 1
	// MetaGap reports overwritten events: {"gap":{"from":a,"to":b}}.
	MetaGap
	// MetaReset says the requested position does not exist in this log:
	// {"reset":{"epoch":E,"oldest":O,"newest":M}}.
	MetaReset
)

// String returns the kind's name as used in lines and SSE event fields:
// "hello", "gap" or "reset".
func (k MetaKind) String() string {
	switch k {
	case MetaHello:
		return "hello"
	case MetaGap:
		return "gap"
	case MetaReset:
		return "reset"
	}
	return "meta"
}

// Meta is a stream line that is not an event. Bounds is set for hello and
// reset, Gap for gap.
type Meta struct {
	Kind   MetaKind
	Bounds store.Bounds
	Gap    store.Gap
}

// AppendData appends the line's inner object, e.g. {"from":a,"to":b}, as
// JSON.
func (m Meta) AppendData(dst []byte) []byte {
	if m.Kind == MetaGap {
		dst = append(dst, `{"from":`...)
		dst = strconv.AppendUint(dst, m.Gap.From, 10)
		dst = append(dst, `,"to":`...)
		dst = strconv.AppendUint(dst, m.Gap.To, 10)
		return append(dst, '}')
	}
	dst = append(dst, `{"epoch":`...)
	epoch, _ := store.MarshalJSON(m.Bounds.Epoch) // a string always marshals
	dst = append(dst, epoch...)
	dst = append(dst, `,"oldest":`...)
	dst = strconv.AppendUint(dst, m.Bounds.Oldest, 10)
	dst = append(dst, `,"newest":`...)
	dst = strconv.AppendUint(dst, m.Bounds.Newest, 10)
	return append(dst, '}')
}

// AppendJSON appends the whole line, e.g. {"gap":{"from":a,"to":b}}, without
// a newline.
func (m Meta) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, m.Kind.String()...)
	dst = append(dst, `":`...)
	dst = m.AppendData(dst)
	return append(dst, '}')
}

// hubMetrics are the hub's Prometheus metrics.
type hubMetrics struct {
	clients  *prometheus.GaugeVec
	events   *prometheus.CounterVec
	messages *prometheus.CounterVec
	slow     *prometheus.CounterVec
	closes   *prometheus.CounterVec
	lag      prometheus.Histogram
	refused  prometheus.Counter
}

// transportMetrics are one transport's children, resolved once per stream.
type transportMetrics struct {
	clients  prometheus.Gauge
	events   prometheus.Counter
	messages prometheus.Counter
	slow     prometheus.Counter
	closes   func(reason string) prometheus.Counter
}

func newHubMetrics(reg prometheus.Registerer) *hubMetrics {
	m := &hubMetrics{
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventgate_stream_clients",
			Help: "Stream clients connected now, by transport (websocket, sse).",
		}, []string{"transport"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_stream_events_sent_total",
			Help: "Events written to stream clients, summed over clients, by transport.",
		}, []string{"transport"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_stream_messages_total",
			Help: "Messages written to stream clients (WebSocket messages; SSE flushes), by transport.",
		}, []string{"transport"}),
		slow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_stream_slow_disconnects_total",
			Help: "Stream clients cut off for lagging more than --stream-queue events, by transport.",
		}, []string{"transport"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_stream_disconnects_total",
			Help: "Stream clients ended, by reason: gone (peer left), forced (shutdown timed out), shutdown, slow, write_error, ping_timeout, store_error.",
		}, []string{"transport", "reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventgate_stream_lag_events",
			Help:    "A client's lag (events stored since it connected not yet sent to it), observed at every write.",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000},
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_stream_refused_total",
			Help: "Stream requests refused with 503 because --max-streams streams were open.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.events, m.messages, m.slow, m.closes, m.lag, m.refused)
	}
	return m
}

func (m *hubMetrics) transport(t string) transportMetrics {
	return transportMetrics{
		clients:  m.clients.WithLabelValues(t),
		events:   m.events.WithLabelValues(t),
		messages: m.messages.WithLabelValues(t),
		slow:     m.slow.WithLabelValues(t),
		closes:   func(reason string) prometheus.Counter { return m.closes.WithLabelValues(t, reason) },
	}
}
