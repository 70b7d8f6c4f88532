package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
)

// dispatcherMetrics are the dispatcher's Prometheus metrics. Per-webhook
// gauges come from a collector that reads the live endpoints at scrape
// time, so a deleted webhook's series disappear with it.
type dispatcherMetrics struct {
	deliveries  *prometheus.CounterVec // by result
	attempts    *prometheus.CounterVec // by outcome
	attemptDur  prometheus.Histogram
	endToEnd    prometheus.Histogram
	retries     prometheus.Counter
	overwritten prometheus.Counter
	logDropped  prometheus.Counter

	// Webhook operations.
	rateWaits    prometheus.Counter
	rotations    prometheus.Counter
	replays      prometheus.Counter
	replayQueued prometheus.Counter
	disabled     *prometheus.CounterVec // by reason
	handshakes   *prometheus.CounterVec // by outcome
	tails        prometheus.Gauge
	tailDropped  prometheus.Counter
	opEvents     *prometheus.CounterVec // by type
	opErrors     prometheus.Counter
	selfSkipped  prometheus.Counter
}

// Attempt outcomes, the label values of eventgate_webhook_attempts_total.
const (
	outcomeSuccess   = "success"    // 2xx
	outcomeGone      = "gone"       // 410: the webhook is disabled
	outcomeHTTPError = "http_error" // any other status, 3xx included
	outcomeTimeout   = "timeout"    // --delivery-timeout passed
	outcomeConnError = "conn_error" // refused, reset, DNS, SSRF guard…
	outcomeCanceled  = "canceled"   // shutdown or delete abandoned it
)

func newDispatcherMetrics(reg prometheus.Registerer, d *Dispatcher) *dispatcherMetrics {
	m := &dispatcherMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_webhook_deliveries_total",
			Help: "Deliveries that reached a final outcome, by result: succeeded, failed (attempts used up or 410), overwritten (events lost to the ring before the endpoint took them, one per range).",
		}, []string{"result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_webhook_attempts_total",
			Help: "Delivery attempts by outcome: success, gone, http_error, timeout, conn_error, canceled.",
		}, []string{"outcome"}),
		attemptDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventgate_webhook_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt, request start to response headers and body read.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventgate_webhook_stored_to_delivered_seconds",
			Help:    "Time from an event being stored to its delivery succeeding (ingest-to-delivery latency, retries included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, 1, 5, 30, 300, 3600},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_retries_scheduled_total",
			Help: "Failed attempts scheduled for a retry on the timer heap.",
		}),
		overwritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_overwritten_events_total",
			Help: "Events overwritten in the ring before an endpoint's cursor reached them (counted per endpoint, matching or not).",
		}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_delivery_log_dropped_total",
			Help: "Delivery log entries dropped because a webhook's log was full (oldest first).",
		}),
		rateWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_rate_limited_waits_total",
			Help: "Times an endpoint with work to start waited for a rate_limit token (on its own timer, holding no attempt slot).",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_secret_rotations_total",
			Help: "Secret rotations (POST /v1/webhooks/{id}/rotate-secret).",
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_replays_total",
			Help: "Replays queued (POST /v1/webhooks/{id}/replay) that matched at least one event.",
		}),
		replayQueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_replay_queued_events_total",
			Help: "Events queued for re-delivery by replays.",
		}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_webhook_auto_disabled_total",
			Help: "Webhooks disabled by the gateway, by reason: gone (410), failing (--disable-after), handshake.",
		}, []string{"reason"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_webhook_handshakes_total",
			Help: "Validation handshakes by outcome: accepted, refused, error.",
		}, []string{"outcome"}),
		tails: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventgate_webhook_tail_subscribers",
			Help: "Live delivery tails connected (GET /v1/webhooks/{id}/deliveries/stream).",
		}),
		tailDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_tail_dropped_total",
			Help: "Delivery tails cut off because they fell 64 attempts behind.",
		}),
		opEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_operational_events_total",
			Help: "Operational events the gateway recorded in its log, by type.",
		}, []string{"type"}),
		opErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_operational_event_errors_total",
			Help: "Operational events that could not be recorded (shutting down, log errors).",
		}),
		selfSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventgate_webhook_self_events_skipped_total",
			Help: "Operational events not delivered to the webhook they describe (no loops).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.attempts, m.attemptDur, m.endToEnd, m.retries, m.overwritten, m.logDropped,
			m.rateWaits, m.rotations, m.replays, m.replayQueued, m.disabled, m.handshakes, m.tails, m.tailDropped,
			m.opEvents, m.opErrors, m.selfSkipped, &endpointCollector{d: d})
	}
	return m
}

// endpointCollector exports each webhook's Stats as gauges labelled by
// webhook id.
type endpointCollector struct{ d *Dispatcher }

var (
	descLag       = prometheus.NewDesc("eventgate_webhook_lag_events", "Events between the webhook's cursor and the log's newest seq (its queue depth).", []string{"webhook"}, nil)
	descInFlight  = prometheus.NewDesc("eventgate_webhook_in_flight", "Delivery attempts in progress.", []string{"webhook"}, nil)
	descRetrying  = prometheus.NewDesc("eventgate_webhook_retrying", "Deliveries waiting for a retry (bounded by --max-retrying).", []string{"webhook"}, nil)
	descArrival   = prometheus.NewDesc("eventgate_webhook_arrival_rate", "Little's law λ: deliveries taken from the log per second over the last minute.", []string{"webhook"}, nil)
	descMeanTime  = prometheus.NewDesc("eventgate_webhook_mean_time_in_system_seconds", "Little's law W: mean time from a matching event being stored to its delivery's final outcome, last minute.", []string{"webhook"}, nil)
	descInSystem  = prometheus.NewDesc("eventgate_webhook_in_system", "Little's law L: matching events not yet at a final outcome (waiting in the log, pending, in flight, retrying).", []string{"webhook"}, nil)
	descSucceeded = prometheus.NewDesc("eventgate_webhook_succeeded_total", "Deliveries that succeeded, per webhook.", []string{"webhook"}, nil)
	descFailed    = prometheus.NewDesc("eventgate_webhook_failed_total", "Deliveries that ended failed, per webhook.", []string{"webhook"}, nil)
	descJSPending = prometheus.NewDesc("eventgate_webhook_jetstream_pending", "With --store nats: the webhook's JetStream consumer lag, matching events not yet handed to any gateway (NumPending, as last seen by this gateway).", []string{"webhook"}, nil)
)

// Describe implements prometheus.Collector.
func (c *endpointCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descInFlight, descRetrying, descArrival, descMeanTime, descInSystem, descSucceeded, descFailed, descJSPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ep := range c.d.endpointList() {
		s := ep.stats()
		id := ep.id
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.Lag), id)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), id)
		ch <- prometheus.MustNewConstMetric(descRetrying, prometheus.GaugeValue, float64(s.Retrying), id)
		ch <- prometheus.MustNewConstMetric(descArrival, prometheus.GaugeValue, s.ArrivalRate, id)
		ch <- prometheus.MustNewConstMetric(descMeanTime, prometheus.GaugeValue, s.MeanTimeInSystem.Seconds(), id)
		ch <- prometheus.MustNewConstMetric(descInSystem, prometheus.GaugeValue, float64(s.InSystem), id)
		ch <- prometheus.MustNewConstMetric(descSucceeded, prometheus.CounterValue, float64(s.Succeeded), id)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(s.Failed), id)
		if ep.src.shared() {
			ch <- prometheus.MustNewConstMetric(descJSPending, prometheus.GaugeValue, float64(s.Lag), id)
		}
	}
}
