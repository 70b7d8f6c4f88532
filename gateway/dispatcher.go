package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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

	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for zero DispatcherConfig fields.
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

// DispatcherConfig configures a Dispatcher; zero fields mean the documented
// defaults.
type DispatcherConfig struct {
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

// ErrTooManyWebhooks is returned by Create when DispatcherConfig.MaxWebhooks
// webhooks exist already.
var ErrTooManyWebhooks = errors.New("too many webhooks")

// DefaultMaxWebhooks is the most webhooks a Dispatcher serves by default.
const DefaultMaxWebhooks = 1000

// Dispatcher delivers stored events to webhooks. Each webhook endpoint is a
// cursor over the log, read by one goroutine that starts at most
// Concurrency attempts at a time; a failed attempt waits for its retry as
// an entry in the dispatcher's one timer heap. Methods are safe for
// concurrent use. Create it with NewDispatcher, start it with Run, stop it
// with Shutdown.
type Dispatcher struct {
	log     store.Log
	pub     *Publisher
	cfg     DispatcherConfig
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

// NewDispatcher returns a Dispatcher reading pub's log; pub also publishes
// the gateway's operational events. It starts nothing. It registers its
// metrics with cfg.Registerer and panics if that fails (a wiring mistake).
func NewDispatcher(pub *Publisher, cfg DispatcherConfig) *Dispatcher {
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
func newTransport(cfg DispatcherConfig) *http.Transport {
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
// was cut short. Idempotent; call Publisher.Shutdown first so that the
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

func (d *Dispatcher) endpoint(id string) (*endpoint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[id]
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
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

// CheckURL reports whether raw may be a webhook URL: absolute http(s),
// and, unless private targets are allowed, a host that neither is nor
// resolves to a loopback, private, link-local, unspecified or multicast
// address. Its errors are *TargetError.
func (d *Dispatcher) CheckURL(ctx context.Context, raw string) error {
	return checkURL(ctx, raw, d.cfg.AllowPrivateTargets, d.cfg.Lookup)
}

// Create registers w: it assigns ID ("wh_" + ULID), CreatedAt and
// UpdatedAt, and a secret when w.Secret is empty, and returns the stored
// webhook (secret included). Delivery starts with events stored after this
// call; with w.Handshake, only once the endpoint has accepted the
// validation handshake (AwaitingHandshake until then). It fails with a
// *TargetError for a refused URL, and with an error for invalid patterns,
// secret, headers (a *HeaderError) or rate limit (the api validates those
// first).
func (d *Dispatcher) Create(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	if err := d.CheckURL(ctx, w.URL); err != nil {
		return store.Webhook{}, err
	}
	if len(w.Types) == 0 {
		w.Types = []string{">"}
	}
	d.mu.Lock()
	full := len(d.endpoints) >= d.cfg.MaxWebhooks
	d.mu.Unlock()
	if full {
		return store.Webhook{}, fmt.Errorf("%w: %d webhooks", ErrTooManyWebhooks, d.cfg.MaxWebhooks)
	}
	w.AwaitingHandshake = w.Handshake
	w.PreviousSecret, w.PreviousExpires = "", time.Time{}
	if w.Secret == "" {
		w.Secret = signature.NewSecret()
	}
	now := time.Now().UTC()
	w.ID = newID("wh_", now)
	w.CreatedAt, w.UpdatedAt = now, now
	if w.Enabled {
		w.DisabledReason = ""
	} else if w.DisabledReason == "" {
		w.DisabledReason = ReasonByRequest
	}
	ep, err := d.loadEndpoint(ctx, w, d.log.Bounds().Newest)
	if err != nil {
		return store.Webhook{}, err
	}
	// In the map before the registry has it, so that a watcher reporting
	// the new webhook finds it there.
	d.mu.Lock()
	d.endpoints[w.ID] = ep
	d.mu.Unlock()
	if err := d.hooks.Create(ctx, w); err != nil {
		d.mu.Lock()
		delete(d.endpoints, w.ID)
		d.mu.Unlock()
		ep.cancel()
		if d.queues != nil {
			_ = d.queues.DeleteQueue(ctx, w.ID)
		}
		return store.Webhook{}, err
	}
	d.mu.Lock()
	if d.endpoints[w.ID] == ep {
		d.startLocked(ep)
	}
	d.mu.Unlock()
	return w, nil
}

// Reasons a webhook is disabled, kept in Webhook.DisabledReason.
const (
	ReasonByRequest = "disabled by request"
	ReasonGone      = "endpoint answered 410 Gone"
)

// Get returns the webhook stored under id, or an error wrapping
// store.ErrNotFound.
func (d *Dispatcher) Get(ctx context.Context, id string) (store.Webhook, error) {
	return d.hooks.Get(ctx, id)
}

// List returns every webhook, oldest first.
func (d *Dispatcher) List(ctx context.Context) ([]store.Webhook, error) {
	return d.hooks.List(ctx)
}

// Stats returns the live figures of webhook id (zero for an unknown id).
func (d *Dispatcher) Stats(id string) Stats {
	ep, err := d.endpoint(id)
	if err != nil {
		return Stats{}
	}
	return ep.stats()
}

// WebhookUpdate is a partial update: nil fields stay as they are.
type WebhookUpdate struct {
	URL         *string
	Types       []string // nil: unchanged
	Description *string
	Enabled     *bool
	Headers     *map[string]string // replaced as a whole
	RateLimit   *float64
	Handshake   *bool
	// ResumeNewest, when this update re-enables a disabled webhook, moves
	// its cursor to the newest event instead of continuing where it stood.
	ResumeNewest bool
}

// Resume says where a re-enabled webhook continues.
type Resume struct {
	From  string // "cursor" or "newest"
	After uint64 // delivery continues with events after this seq
}

// Update applies u to webhook id and returns the stored result, and, when
// u re-enabled it, where delivery resumes (nil otherwise). Changes take
// effect at once: a disabled webhook starts no new attempt (its pending
// deliveries and retries are held, not dropped); new types apply to events
// taken from then on. A webhook with Handshake awaits a new handshake when
// its URL changes, when Handshake is switched on and when it is
// re-enabled. Errors: store.ErrNotFound (wrapped), a *TargetError for a
// refused URL, a *HeaderError, or an error for invalid patterns or rate.
func (d *Dispatcher) Update(ctx context.Context, id string, u WebhookUpdate) (store.Webhook, *Resume, error) {
	ep, err := d.endpoint(id)
	if err != nil {
		return store.Webhook{}, nil, err
	}
	if u.URL != nil {
		if err := d.CheckURL(ctx, *u.URL); err != nil {
			return store.Webhook{}, nil, err
		}
	}
	if u.Types != nil {
		if _, err := store.ParseFilter(u.Types); err != nil {
			return store.Webhook{}, nil, err
		}
	}
	if u.Headers != nil {
		if errs := CheckHeaders(*u.Headers); len(errs) > 0 {
			return store.Webhook{}, nil, errs[0]
		}
	}
	if u.RateLimit != nil && (*u.RateLimit < 0 || *u.RateLimit > MaxRateLimit) {
		return store.Webhook{}, nil, fmt.Errorf("rate limit %v is outside 0..%d", *u.RateLimit, MaxRateLimit)
	}
	ep.applying.Lock()
	defer ep.applying.Unlock()
	reenabled := false
	w, err := d.hooks.Update(ctx, id, func(w *store.Webhook) error {
		reenabled = false // fn may run again: depend on w only
		rehandshake := false
		if u.URL != nil {
			rehandshake = *u.URL != w.URL
			w.URL = *u.URL
		}
		if u.Types != nil {
			w.Types = slices.Clone(u.Types)
		}
		if u.Description != nil {
			w.Description = *u.Description
		}
		if u.Headers != nil {
			w.Headers = maps.Clone(*u.Headers)
		}
		if u.RateLimit != nil {
			w.RateLimit = *u.RateLimit
		}
		if u.Handshake != nil {
			rehandshake = rehandshake || (*u.Handshake && !w.Handshake)
			w.Handshake = *u.Handshake
		}
		if u.Enabled != nil && *u.Enabled != w.Enabled {
			w.Enabled = *u.Enabled
			reenabled = w.Enabled
			if w.Enabled {
				w.DisabledReason = ""
			} else {
				w.DisabledReason = ReasonByRequest
			}
		}
		w.AwaitingHandshake = w.Handshake && (w.AwaitingHandshake || rehandshake || reenabled)
		w.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return store.Webhook{}, nil, err
	}
	after, err := ep.apply(w, reenabled && u.ResumeNewest)
	if err != nil {
		return store.Webhook{}, nil, err
	}
	if ep.q != nil {
		if u.Types != nil {
			if err := ep.q.SetTypes(ctx, w.Types); err != nil {
				return store.Webhook{}, nil, err
			}
		}
		switch {
		case reenabled && u.ResumeNewest:
			if err := ep.q.Reset(ctx, after); err != nil {
				return store.Webhook{}, nil, err
			}
		case reenabled:
			if after, err = ep.q.Position(ctx); err != nil {
				return store.Webhook{}, nil, err
			}
		}
	}
	if !reenabled {
		return w, nil, nil
	}
	r := &Resume{From: "cursor", After: after}
	if u.ResumeNewest {
		r.From = "newest"
	}
	d.cfg.Logger.Info("webhook re-enabled", "webhook", id, "resume", r.From, "after", after)
	return w, r, nil
}

// Delete removes webhook id at once: its pending deliveries and retries
// are dropped, its attempts in flight cancelled and its goroutine stopped.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	if err := d.hooks.Delete(ctx, id); err != nil {
		return err
	}
	d.forget(id)
	if d.queues != nil {
		return d.queues.DeleteQueue(ctx, id)
	}
	return nil
}

// Deliveries returns up to limit deliveries of webhook id, newest first,
// only those in status unless it is "". Errors: store.ErrNotFound.
func (d *Dispatcher) Deliveries(id string, status store.DeliveryStatus, limit int) ([]store.Delivery, error) {
	ep, err := d.endpoint(id)
	if err != nil {
		return nil, err
	}
	return ep.deliveries(status, limit), nil
}

// Retry schedules an immediate attempt of delivery dlvID of webhook id,
// whatever its status, and returns the delivery as it now stands. The
// attempt keeps the delivery's id and webhook-id; attempts keeps counting.
// If it fails, a retrying delivery keeps its schedule and any other ends
// failed. Errors: store.ErrNotFound for an unknown webhook or delivery, or
// when the event is no longer buffered and the delivery holds no copy.
func (d *Dispatcher) Retry(ctx context.Context, id, dlvID string) (store.Delivery, error) {
	ep, err := d.endpoint(id)
	if err != nil {
		return store.Delivery{}, err
	}
	return ep.retryNow(ctx, dlvID)
}

// loadEndpoint makes webhook w's endpoint (not started), with its queue
// when the log shares deliveries (one made now starts after seq after).
func (d *Dispatcher) loadEndpoint(ctx context.Context, w store.Webhook, after uint64) (*endpoint, error) {
	ep, err := d.newEndpoint(w, after)
	if err != nil {
		return nil, err
	}
	if ep.q, err = d.openQueue(ctx, w, after); err != nil {
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
	ep, err := d.endpoint(id)
	if err != nil { // new to this gateway
		ep, err := d.loadEndpoint(ctx, w, d.log.Bounds().Newest)
		if err != nil {
			d.cfg.Logger.Error("cannot load webhook", "webhook", id, "err", err)
			return
		}
		d.mu.Lock()
		if _, ok := d.endpoints[id]; ok || d.stopped {
			d.mu.Unlock()
			ep.cancel()
			return
		}
		d.endpoints[id] = ep
		d.startLocked(ep)
		d.mu.Unlock()
		d.cfg.Logger.Info("webhook loaded from the registry", "webhook", id)
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
	if ep.q != nil && types {
		if err := ep.q.SetTypes(ctx, w.Types); err != nil {
			d.cfg.Logger.Error("cannot change a webhook's queue", "webhook", id, "err", err)
		}
	}
}
