package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for zero Config fields.
const (
	DefaultDeliveryTimeout = 10 * time.Second
	DefaultConcurrency     = 8
	DefaultMaxRetrying     = 10_000
	DefaultDisableAfter    = 72 * time.Hour
	DefaultDeliveryLogSize = 1000
)

// Response handling: the first respKeep bytes of a failed attempt's body
// are read for last_error; up to respDrain more are drained so that the
// connection can be reused, then the body is closed.
const (
	respKeep      = 4 << 10
	respDrain     = 64 << 10
	lastErrorBody = 512 // bytes of the body quoted in last_error
)

// Config configures a Dispatcher; zero fields mean the documented
// defaults.
type Config struct {
	Schedule            []time.Duration // --retry-schedule; default DefaultRetrySchedule
	Timeout             time.Duration   // --delivery-timeout, per attempt; default 10s
	Concurrency         int             // --endpoint-concurrency; default 8
	MaxRetrying         int             // --max-retrying, per webhook; default 10000
	MaxWebhooks         int             // --max-webhooks; Create fails with ErrTooManyWebhooks past it; default DefaultMaxWebhooks
	DisableAfter        time.Duration   // --disable-after (issue: webhook operations); default 72h
	AllowPrivateTargets bool            // --allow-private-targets
	Logger              *slog.Logger
	Registerer          prometheus.Registerer // nil: metrics are not registered
	// Webhooks is the registry (default: a new store.MemWebhooks).
	Webhooks store.Webhooks
	// DeliveryLogSize is how many deliveries each webhook's log keeps,
	// newest first; older ones are dropped and counted (default 1000).
	DeliveryLogSize int
	// Transport replaces the guarded HTTP transport (tests only; the SSRF
	// dial guard lives in the default transport).
	Transport http.RoundTripper
	// Lookup resolves host names for the registration-time SSRF check
	// (default: net.DefaultResolver). The dial-time check always uses the
	// address actually dialled.
	Lookup LookupFunc
	// Rand returns jitter in [0,1); it must be safe for concurrent use
	// (default: math/rand/v2's Float64).
	Rand func() float64
	// Origin is sent as WebHook-Request-Origin in validation handshakes
	// (default: the host name, or "eventgate" when it is unknown).
	Origin string
}

// ErrTooManyWebhooks is returned by Create when Config.MaxWebhooks
// webhooks exist already.
var ErrTooManyWebhooks = errors.New("too many webhooks")

// DefaultMaxWebhooks is the most webhooks a Dispatcher serves by default.
const DefaultMaxWebhooks = 1000

// Dispatcher delivers stored events to webhooks. Each webhook endpoint is a
// cursor over the log, read by one goroutine that starts at most
// Concurrency attempts at a time; a failed attempt waits for its retry as
// an entry in the dispatcher's one timer heap. Methods are safe for
// concurrent use. Create it with New, start it with Run, stop it
// with Shutdown.
type Dispatcher struct {
	log     store.Log
	pub     *gateway.Publisher
	cfg     Config
	hooks   store.Webhooks
	queues  store.DeliveryQueues // nil: each endpoint is a cursor over the log
	client  *http.Client
	metrics *dispatcherMetrics
	retries *retryHeap
	longest time.Duration
	epoch   string

	base   context.Context // lifecycle of every goroutine and attempt
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when Run returns

	// drain is 0 until Shutdown begins draining, then 1 + the newest seq
	// at that moment: what each endpoint still takes (read on every step,
	// hence atomic; see drainTarget).
	drain atomic.Uint64

	mu        sync.Mutex
	endpoints map[string]*endpoint
	phase     phase
}

// phase is where a Dispatcher is in its life; it only moves forward.
type phase uint8

const (
	phaseNew      phase = iota // made: Run not called
	phaseRunning               // Run has started its goroutines
	phaseShutdown              // Shutdown has begun: draining
	phaseStopped               // base is (being) cancelled: start no goroutine
)

// drainTarget reports whether the dispatcher is draining, and to which
// seq.
func (d *Dispatcher) drainTarget() (target uint64, draining bool) {
	v := d.drain.Load()
	if v == 0 {
		return 0, false
	}
	return v - 1, true
}

// draining reports whether Shutdown has begun draining.
func (d *Dispatcher) draining() bool { return d.drain.Load() != 0 }

// New returns a Dispatcher reading pub's log; pub also publishes
// the gateway's operational events. It starts nothing. It registers its
// metrics with cfg.Registerer and panics if that fails (a wiring mistake).
func New(pub *gateway.Publisher, cfg Config) *Dispatcher {
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultRetrySchedule
	}
	cfg.Schedule = slices.Clone(cfg.Schedule)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDeliveryTimeout
	}
	if cfg.MaxWebhooks <= 0 {
		cfg.MaxWebhooks = DefaultMaxWebhooks
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxRetrying <= 0 {
		cfg.MaxRetrying = DefaultMaxRetrying
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.DeliveryLogSize <= 0 {
		cfg.DeliveryLogSize = DefaultDeliveryLogSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Webhooks == nil {
		cfg.Webhooks = &store.MemWebhooks{}
	}
	if cfg.Lookup == nil {
		cfg.Lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Origin == "" {
		cfg.Origin = "eventgate"
		if h, err := os.Hostname(); err == nil && h != "" {
			cfg.Origin = h
		}
	}
	if cfg.Transport == nil {
		cfg.Transport = newTransport(cfg)
	}
	base, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		log:   pub.Log(),
		pub:   pub,
		cfg:   cfg,
		hooks: cfg.Webhooks,
		client: &http.Client{
			Transport: cfg.Transport,
			// A redirect is an answer like any other 3xx: a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		retries:   newRetryHeap(),
		longest:   slices.Max(cfg.Schedule),
		epoch:     pub.Log().Bounds().Epoch,
		base:      base,
		cancel:    cancel,
		done:      make(chan struct{}),
		endpoints: make(map[string]*endpoint),
	}
	d.queues, _ = d.log.(store.DeliveryQueues)
	d.metrics = newDispatcherMetrics(cfg.Registerer, d)
	return d
}

// newTransport is the dispatcher's one HTTP transport: keep-alive with
// enough idle connections per host for every in-flight attempt, no proxy,
// and, unless private targets are allowed, the SSRF guard on every dial.
func newTransport(cfg Config) *http.Transport {
	dialer := &net.Dialer{Timeout: min(cfg.Timeout, 30*time.Second), KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivateTargets {
		dialer.Control = guardControl
	}
	return &http.Transport{
		Proxy:                 nil, // a proxy would dial on our behalf, past the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   max(cfg.Concurrency, 2),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// Run starts an endpoint goroutine per registered webhook and the retry
// timer, and blocks until ctx ends or Shutdown completes; it returns after
// every goroutine it started has exited. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.phase != phaseNew {
		d.mu.Unlock()
		return errors.New("dispatcher: Run called twice or after Shutdown")
	}
	d.phase = phaseRunning
	d.mu.Unlock()
	defer close(d.done)

	hooks, err := d.hooks.List(ctx)
	if err != nil {
		d.cfg.Logger.Error("cannot load webhooks", "err", err)
	}
	newest := d.log.Bounds().Newest
	loaded := make([]*endpoint, 0, len(hooks))
	for _, w := range hooks {
		if ep, err := d.loadEndpoint(ctx, w, newest); err == nil {
			loaded = append(loaded, ep)
		} else {
			d.cfg.Logger.Error("cannot load webhook", "webhook", w.ID, "err", err)
		}
	}
	d.mu.Lock()
	for _, ep := range loaded {
		if _, ok := d.endpoints[ep.id]; !ok {
			d.endpoints[ep.id] = ep
		} else {
			ep.cancel()
		}
	}
	for _, ep := range d.endpoints {
		d.startLocked(ep)
	}
	if d.phase != phaseStopped {
		d.wg.Go(func() { d.retries.run(d.base) })
		if wt, ok := d.hooks.(store.WebhookWatcher); ok {
			d.wg.Go(func() { d.watch(wt) })
		}
	}
	d.mu.Unlock()

	stop := context.AfterFunc(ctx, d.stop)
	defer stop()
	<-d.base.Done()
	d.wg.Wait()
	for _, ep := range d.endpointList() {
		ep.mu.Lock()
		ep.closeTailsLocked()
		ep.mu.Unlock()
	}
	if t, ok := d.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// stop cancels the lifecycle context; no goroutine starts after it.
func (d *Dispatcher) stop() {
	d.mu.Lock()
	d.phase = phaseStopped
	d.mu.Unlock()
	d.cancel()
}

func (d *Dispatcher) startLocked(ep *endpoint) {
	if (d.phase == phaseRunning || d.phase == phaseShutdown) && !ep.started {
		ep.started = true
		d.wg.Go(ep.run)
	}
}

// Shutdown stops reading new events: each endpoint still takes the events
// stored up to the log's newest seq at this moment, and the dispatcher
// keeps delivering them, and retries that fall due, to endpoints that
// answer, until nothing is left or ctx ends. Then it cancels the attempts
// in flight, waits for Run's goroutines to exit, and logs what is
// undelivered with counts per webhook. It returns ctx's error if the drain
// was cut short. Idempotent; call gateway.Publisher.Shutdown first so that the
// newest seq is final.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	switch d.phase {
	case phaseShutdown: // a second call: the first drains
		d.mu.Unlock()
		return nil
	case phaseNew, phaseStopped: // nothing to drain
		d.mu.Unlock()
		d.stop()
		return nil
	}
	d.phase = phaseShutdown
	eps := d.endpointsLocked()
	d.mu.Unlock()

	deadline, _ := ctx.Deadline()
	d.retries.drain(deadline)
	d.drain.Store(1 + d.log.Bounds().Newest)
	for _, ep := range eps {
		ep.poke()
	}
	var err error
wait:
	for _, ep := range eps {
		select {
		case <-ep.drained:
		case <-d.base.Done():
			break wait
		case <-ctx.Done():
			err = fmt.Errorf("dispatcher drain: %w", ctx.Err())
			break wait
		}
	}
	d.stop()
	select {
	case <-d.done:
	case <-ctx.Done():
		// Run's goroutines are cancelled and exit as their requests end;
		// do not hold shutdown past its deadline for them.
		d.cfg.Logger.Warn("dispatcher goroutines still running at the shutdown deadline")
		if err == nil {
			err = fmt.Errorf("dispatcher stop: %w", ctx.Err())
		}
	}
	d.logUndelivered(eps)
	return err
}

// logUndelivered logs, per webhook, the deliveries left when the drain
// ended: events not yet taken up to the drain target, attempts that were
// in flight and deliveries waiting for a retry.
func (d *Dispatcher) logUndelivered(eps []*endpoint) {
	total := 0
	for _, ep := range eps {
		target, _ := d.drainTarget()
		notTaken, inFlight, retrying := ep.undelivered(target)
		if n := notTaken + inFlight + retrying; n > 0 {
			total += n
			d.cfg.Logger.Warn("undelivered at shutdown", "webhook", ep.id,
				"not_taken", notTaken, "in_flight", inFlight, "retrying", retrying)
		}
	}
	if total > 0 {
		d.cfg.Logger.Warn("deliveries left undelivered at shutdown", "total", total, "webhooks", len(eps))
	} else {
		d.cfg.Logger.Info("dispatcher drained", "webhooks", len(eps))
	}
}

func (d *Dispatcher) endpointsLocked() []*endpoint {
	out := make([]*endpoint, 0, len(d.endpoints))
	for _, ep := range d.endpoints {
		out = append(out, ep)
	}
	return out
}

func (d *Dispatcher) endpointList() []*endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endpointsLocked()
}

// msgID is the webhook-id of the event stored under seq: the same for
// every attempt and every endpoint, and unique across log lifetimes.
func (d *Dispatcher) msgID(seq uint64) string {
	var buf [64]byte
	b := append(buf[:0], "msg_"...)
	b = append(b, d.epoch...)
	b = append(b, '_')
	return string(strconv.AppendUint(b, seq, 10))
}

// loadEndpoint makes webhook w's endpoint (not started) with its source,
// which starts after seq after when it is new.
func (d *Dispatcher) loadEndpoint(ctx context.Context, w store.Webhook, after uint64) (*endpoint, error) {
	ep, err := d.newEndpoint(w)
	if err != nil {
		return nil, err
	}
	if ep.src, err = d.openSource(ctx, ep, w, after); err != nil {
		ep.cancel()
		return nil, err
	}
	return ep, nil
}
