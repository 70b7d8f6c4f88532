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

	draining atomic.Bool
	target   atomic.Uint64 // newest seq when Shutdown began

	mu        sync.Mutex
	endpoints map[string]*endpoint
	running   bool // Run has started
	stopped   bool // base is (being) cancelled: start no goroutine
	shutdown  bool // Shutdown has begun
}

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
	if d.running || d.stopped {
		d.mu.Unlock()
		return errors.New("dispatcher: Run called twice or after Shutdown")
	}
	d.running = true
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
	if !d.stopped {
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
	d.stopped = true
	d.mu.Unlock()
	d.cancel()
}

func (d *Dispatcher) startLocked(ep *endpoint) {
	if d.running && !d.stopped && !ep.started {
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
	if d.shutdown {
		d.mu.Unlock()
		return nil
	}
	d.shutdown = true
	running := d.running && !d.stopped
	eps := d.endpointsLocked()
	d.mu.Unlock()
	if !running {
		d.stop()
		return nil
	}

	deadline, _ := ctx.Deadline()
	d.target.Store(d.log.Bounds().Newest)
	d.retries.drain(deadline)
	d.draining.Store(true)
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
		notTaken, inFlight, retrying := ep.undelivered(d.target.Load())
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

// local returns webhook id's endpoint on this gateway, or an error
// wrapping store.ErrNotFound.
func (d *Dispatcher) local(id string) (*endpoint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[id]
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	return ep, nil
}

// endpoint returns webhook id's endpoint. A webhook this gateway does not
// know yet, but the registry has (created through another gateway
// sharing it, before this one's watch caught up), is loaded at once: any
// operation succeeds as soon as the create that returned the id has
// answered. Errors: store.ErrNotFound (wrapped), or the registry's.
func (d *Dispatcher) endpoint(ctx context.Context, id string) (*endpoint, error) {
	ep, err := d.local(id)
	if err == nil {
		return ep, nil
	}
	if _, shared := d.hooks.(store.WebhookWatcher); !shared {
		return nil, err
	}
	w, err := d.hooks.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.install(ctx, w)
}

// install makes and starts the endpoint of w, a webhook new to this
// gateway, and returns it; or returns the one installed meanwhile.
func (d *Dispatcher) install(ctx context.Context, w store.Webhook) (*endpoint, error) {
	ep, err := d.loadEndpoint(ctx, w, d.log.Bounds().Newest)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if had, ok := d.endpoints[w.ID]; ok {
		ep.cancel()
		return had, nil
	}
	if d.stopped {
		ep.cancel()
		return nil, ErrStopped
	}
	d.endpoints[w.ID] = ep
	d.startLocked(ep)
	d.cfg.Logger.Info("webhook loaded from the registry", "webhook", w.ID)
	return ep, nil
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

// forget stops and drops webhook id's endpoint, if there is one.
func (d *Dispatcher) forget(id string) {
	d.mu.Lock()
	ep := d.endpoints[id]
	delete(d.endpoints, id)
	d.mu.Unlock()
	if ep != nil {
		ep.remove()
	}
}

// watch follows the registry's changes (made here or through another
// gateway sharing it) until the dispatcher stops, watching again a second
// after a failure.
func (d *Dispatcher) watch(wt store.WebhookWatcher) {
	for {
		err := wt.Watch(d.base, d.watched)
		if d.base.Err() != nil {
			return
		}
		d.cfg.Logger.Warn("webhook registry watch ended; watching again", "err", err)
		select {
		case <-d.base.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// watched brings webhook id's endpoint in line with the registry: made
// when new, updated when the registry holds a newer revision than the
// endpoint, stopped when deleted.
func (d *Dispatcher) watched(id string) {
	ctx, cancel := context.WithTimeout(d.base, 10*time.Second)
	defer cancel()
	w, err := d.hooks.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		d.forget(id)
		return
	}
	if err != nil {
		d.cfg.Logger.Error("cannot read a changed webhook", "webhook", id, "err", err)
		return
	}
	ep, err := d.local(id)
	if err != nil { // new to this gateway
		if _, err := d.install(ctx, w); err != nil && !errors.Is(err, ErrStopped) {
			d.cfg.Logger.Error("cannot load webhook", "webhook", id, "err", err)
		}
		return
	}
	ep.applying.Lock()
	defer ep.applying.Unlock()
	if w, err = d.hooks.Get(ctx, id); err != nil { // the newest, now that no local change is half-way
		return
	}
	ep.mu.Lock()
	newer := w.Revision > ep.hook.Revision
	types := !slices.Equal(w.Types, ep.hook.Types)
	ep.mu.Unlock()
	if !newer {
		return
	}
	if _, err := ep.apply(w, false); err != nil {
		d.cfg.Logger.Error("cannot apply a changed webhook", "webhook", id, "err", err)
	}
	if _, err := ep.src.apply(ctx, w, types, false, false, 0); err != nil {
		d.cfg.Logger.Error("cannot change a webhook's queue", "webhook", id, "err", err)
	}
}
