package dispatch

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// endpoint is one webhook's deliveries: it takes them from its source (a
// cursor over the log, or a shared queue), attempts them, decides each
// attempt's verdict and has the source settle it. Its goroutine (run)
// takes deliveries from the source and starts attempts; the API and the
// retry heap hand it work through due and kick. Its attempt workers (at
// most Concurrency, see work) take attempts from jobs; run starts them and
// waits for them. A worker books the result of an attempt launched alone
// itself when the source settles without I/O (the log's cursor: direct),
// and pokes run only when that gives it work (needsRunLocked); on a queue
// it books every result and starts the next prefetched delivery itself
// (chain), within the bounds run applies; otherwise it reports the result
// on results for run to book, several at a time.
type endpoint struct {
	d       *Dispatcher
	id      string
	ctx     context.Context // cancelled by Delete and by the dispatcher's stop
	cancel  context.CancelFunc
	kick    chan struct{}   // 1-slot: due work or the config changed
	jobs    chan attemptJob // capacity Concurrency: attempts not yet picked up by a worker
	results chan result     // capacity Concurrency+1: workers never block
	drained chan struct{}   // closed once idle while draining, or on exit
	soon    atomic.Int64    // heap entries this endpoint must wait for while draining
	started bool            // guarded by d.mu
	// direct: the source settles without I/O, so a worker may book its
	// result itself (see settle). Set by run before it starts a worker,
	// never changed.
	direct bool
	// chain: workers book their results and start the next prefetched
	// delivery themselves (a queue source: see settle). Set by run before
	// it starts a worker, never changed.
	chain bool
	// slotWait: run's last step found no free slot (Concurrency or
	// MaxRetrying reached), so it waits for finished attempts, not for
	// the log. Written by run with mu held; read by workers without it.
	slotWait atomic.Bool
	// workerWG counts the attempt workers and handshakes; run waits for
	// it before it returns.
	workerWG sync.WaitGroup

	drainOnce sync.Once

	// applying orders the registry's states as this endpoint applies
	// them: held by Update and RotateSecret from their registry write
	// until the endpoint has the result, and by the registry watch while
	// it compares and applies, so that a watched state never overtakes a
	// local change (resume newest, say) half-way. Held across registry
	// I/O, by API calls and the watch only, never by the endpoint
	// goroutine.
	applying sync.Mutex

	mu        sync.Mutex
	hook      store.Webhook
	filter    store.Filter
	secrets   []signature.Secret // new first; replaced, never modified
	prevUntil time.Time          // the previous secret signs until then; zero: none
	headers   map[string]string  // custom headers; replaced, never modified
	bucket    tokenBucket        // rate_limit (and the handshake's allowed rate)
	hs        handshakeState
	// failingSince is when the first failed attempt of the current
	// failure streak started; zero after a success.
	failingSince time.Time
	// disabling is a disable this endpoint decided and has not stored yet
	// (see persistDisabled); Get and List show it meanwhile.
	disabling *pendingDisable
	replay    *replayRange // a replay in progress; nil when none
	tails     map[*Tail]struct{}
	ops       pendingOps // work for flushOps, outside mu
	src       source     // set before run starts, never changed
	due       []dueItem  // retries that fell due and manual retries, in order
	inFlight  int
	workers   int // attempt workers running (idle or busy), at most Concurrency
	retrying  int // heap entries + due retries
	inSystem  int // taken and not yet at a final outcome
	succeeded uint64
	failed    uint64
	win       window
	log       deliveryLog
	deleted   bool
}

type dueItem struct {
	dl     *delivery
	manual bool
}

// delivery is the endpoint's live record of one delivery. Guarded by the
// endpoint's mutex; attempt workers never touch it.
type delivery struct {
	store.Delivery
	rec      store.Record // the event; held until the final outcome
	storedAt time.Time
	takenAt  time.Time
	retries  int         // schedule delays used
	entry    *retryEntry // non-nil while waiting on the heap
	busy     bool        // queued in due or in flight
	final    bool        // has reached a final outcome once (and was counted)
	away     bool        // queued: in the queue or on another gateway, not in this one's system
	// queuedRetry: its retry waits in the queue (handed back with a
	// delay); a manual attempt that delivers it settles that retry.
	queuedRetry bool
	typ         string // the event's type (no loops: see finalLocked)
	slot        int    // its slot in the endpoint's deliveryLog
	// msg settles the queued message while this gateway holds it (queue
	// endpoints only); nil otherwise.
	msg store.Settler
}

// result is what an attempt worker reports.
type result struct {
	hs          *handshakeResult // non-nil for a handshake, dl is then nil
	dl          *delivery
	manual      bool
	start       time.Time
	dur         time.Duration
	status      int
	retryAfter  string
	body        []byte // the first respKeep bytes of the answer's body
	contentType string
	err         error
}

// newEndpoint makes webhook w's endpoint, without its source.
func (d *Dispatcher) newEndpoint(w store.Webhook) (*endpoint, error) {
	ep := &endpoint{
		d:       d,
		id:      w.ID,
		kick:    make(chan struct{}, 1),
		jobs:    make(chan attemptJob, d.cfg.Concurrency),
		results: make(chan result, d.cfg.Concurrency+1), // + one handshake
		drained: make(chan struct{}),
		log:     newDeliveryLog(d.cfg.DeliveryLogSize),
		tails:   make(map[*Tail]struct{}),
	}
	if err := ep.setHook(w, time.Now()); err != nil {
		return nil, err
	}
	ep.ctx, ep.cancel = context.WithCancel(d.base)
	return ep, nil
}

// setHook parses w's patterns and secrets and installs w; callers hold
// mu or own ep. The previous secret is kept only while it has not expired
// at now.
func (e *endpoint) setHook(w store.Webhook, now time.Time) error {
	f, err := store.ParseFilter(w.Types)
	if err != nil {
		return err
	}
	s, err := signature.ParseSecret(w.Secret)
	if err != nil {
		return err
	}
	secrets, until := []signature.Secret{s}, time.Time{}
	if w.PreviousSecret != "" && now.Before(w.PreviousExpires) {
		prev, err := signature.ParseSecret(w.PreviousSecret)
		if err != nil {
			return err
		}
		secrets, until = append(secrets, prev), w.PreviousExpires
	}
	// Not CheckRateLimit: this also loads stored webhooks, and one stored
	// before MinRateLimit existed must still load, so that it can be
	// patched (the bucket caps its wait at maxTokenWait). Create and
	// Update check new values with CheckRateLimit.
	if !(w.RateLimit >= 0 && w.RateLimit <= MaxRateLimit) {
		return fmt.Errorf("rate limit %v is outside 0..%d", w.RateLimit, MaxRateLimit)
	}
	if errs := CheckHeaders(w.Headers); len(errs) > 0 {
		return errs[0]
	}
	old := e.hook
	if w.AwaitingHandshake && (!old.AwaitingHandshake || old.URL != w.URL) {
		e.hs.reset()
	}
	if w.Enabled && !old.Enabled {
		e.failingSince = time.Time{} // a new streak starts when re-enabled
	}
	e.hook, e.filter, e.secrets, e.prevUntil = w, f, secrets, until
	e.headers = maps.Clone(w.Headers)
	e.bucket.set(w.RateLimit, e.hs.allowedRate, now)
	return nil
}

// apply installs an updated webhook; with newest it moves the cursor to
// newest (re-enabled with resume newest). It returns the seq delivery
// continues after.
func (e *endpoint) apply(w store.Webhook, newest bool) (uint64, error) {
	e.mu.Lock()
	err := e.setHook(w, time.Now())
	var after uint64
	if err == nil && newest {
		after = e.src.moveToLocked(e.d.log.Bounds().Newest)
	} else {
		after = e.src.moveToLocked(0)
	}
	e.mu.Unlock()
	e.poke()
	return after, err
}

// report hands an attempt's result to the endpoint's goroutine, or drops
// it once the endpoint has stopped (deleted, or the dispatcher stopped):
// a worker never outlives its endpoint by more than its own request.
func (e *endpoint) report(r result) {
	select {
	case e.results <- r:
	case <-e.ctx.Done():
		select { // the endpoint may still be draining results: prefer them
		case e.results <- r:
		default:
		}
	}
}

// poke wakes the endpoint's goroutine without blocking.
func (e *endpoint) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// remove stops the endpoint for good (Delete) and ends its tails.
func (e *endpoint) remove() {
	e.mu.Lock()
	e.deleted = true
	e.closeTailsLocked()
	e.mu.Unlock()
	e.cancel()
	e.d.retries.removeEndpoint(e)
}

// run is the endpoint's goroutine. Besides new events, finished attempts
// and kicks, it waits on one timer for whatever falls due next: a rate
// limit token, the previous secret's expiry, a handshake retry.
func (e *endpoint) run() {
	_, e.direct = e.src.(*logSource)
	_, e.chain = e.src.(*queueSource)
	defer e.src.flush(true) // the counts not yet due: the connection is still open
	defer e.drainOnce.Do(func() { close(e.drained) })
	defer e.workerWG.Wait() // they stop on ctx, which ended the loop
	var buf []store.Record
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		wait, at := e.step(&buf)
		at = earliest(at, e.flushOps())
		e.checkDrained()
		var tick <-chan time.Time
		if !at.IsZero() {
			timer.Reset(time.Until(at))
			tick = timer.C
		}
		select {
		case <-tick:
		case r := <-e.results:
			e.finish(r)
			// Book every finished attempt before reading again, so one
			// Read refills several slots.
			for more := true; more; {
				select {
				case r := <-e.results:
					e.finish(r)
				default:
					more = false
				}
			}
			e.flushOps()
		case m, ok := <-e.src.incoming():
			e.src.received(m, ok)
			e.flushOps()
		case <-wait:
		case <-e.kick:
		case <-e.ctx.Done():
			return
		}
		timer.Stop()
	}
}

// step starts what it can: the handshake while one is awaited, else due
// retries first, then replayed and new events from the log, while fewer
// than Concurrency attempts are in flight, fewer than MaxRetrying wait for
// a retry and the rate limit has tokens. It returns the channel to wait on
// for new events (nil when it cannot take any now) and when to wake up
// regardless (zero: never).
func (e *endpoint) step(buf *[]store.Record) (<-chan struct{}, time.Time) {
	d := e.d
	target, draining := d.drainTarget()
	now := time.Now()
	e.mu.Lock()
	e.expireSecretLocked(now)
	wake := e.prevUntil
	if e.hook.AwaitingHandshake {
		wake = earliest(wake, e.handshakeLocked(now, draining))
		e.mu.Unlock()
		// Nothing is attempted before the handshake: what a queue
		// prefetched goes back to it, for whichever gateway can attempt.
		return e.src.take(false, d.cfg.Concurrency, draining, buf, wake, now)
	}
	tokens := e.bucket.available(now)
	for e.hook.Enabled && e.inFlight < d.cfg.Concurrency && len(e.due) > 0 && tokens > 0 {
		it := e.due[0]
		e.due[0] = dueItem{}
		e.due = e.due[1:]
		if !it.manual {
			e.retrying--
		}
		e.launchLocked(it.dl, it.manual)
		tokens--
	}
	// Every attempt in flight may come back as a retry: counting them keeps
	// retrying <= MaxRetrying strictly.
	free := min(d.cfg.Concurrency-e.inFlight, d.cfg.MaxRetrying-e.retrying-e.inFlight)
	active := e.hook.Enabled && !e.deleted
	e.slotWait.Store(active && free <= 0)
	if active && free > 0 && tokens == 0 {
		// Work waits for a token, not for a slot: wake when one is due
		// (and then wait on the log as usual).
		if len(e.due) > 0 || e.replay != nil || !e.src.drainedLocked(d.log.Bounds().Newest) {
			d.metrics.rateWaits.Inc()
		}
		wake = earliest(wake, e.bucket.next(now))
	}
	free = min(free, tokens)
	canRead := active && free > 0 && e.src.canTakeLocked(draining, target)
	var rp *replayRange
	if active && free > 0 && !draining && e.replay != nil {
		rp = e.replay
	}
	filter := e.filter
	e.mu.Unlock()

	if rp != nil {
		// A replay shares the slots: it takes half of them (at least one)
		// while live events wait, so neither starves the other.
		n := free
		if canRead && free > 1 {
			n = free / 2
		}
		free -= e.readReplay(rp, n, filter, buf)
	}
	return e.src.take(canRead, free, draining, buf, wake, now)
}

// canStartLocked reports whether one more attempt may start now: a slot
// is free, the attempts in flight and the retries waiting stay under
// MaxRetrying (each attempt may come back as a retry), and the rate limit
// has a token. step applies the same bounds to what it starts.
func (e *endpoint) canStartLocked(now time.Time) bool {
	d := e.d
	return e.inFlight < d.cfg.Concurrency && e.retrying+e.inFlight < d.cfg.MaxRetrying && e.bucket.available(now) > 0
}

// takeLocked turns a record into a delivery and launches its first
// attempt (the caller has checked slots and tokens).
func (e *endpoint) takeLocked(rec store.Record, now time.Time, origin string) {
	e.win.arrive(now, time.Unix(0, rec.StoredAt), 1)
	dl := &delivery{
		Delivery: store.Delivery{
			ID: gateway.NewID("dlv_", now), WebhookID: e.id,
			EventSeq: rec.Seq, EventID: rec.ID,
			Status: store.DeliveryPending, NextAttemptAt: now, CreatedAt: now, Origin: origin,
		},
		rec:      rec,
		storedAt: time.Unix(0, rec.StoredAt),
		takenAt:  now,
		typ:      rec.Type,
	}
	e.inSystem++
	e.addLocked(dl)
	e.launchLocked(dl, false)
}

// earliest returns the earlier of a and b, ignoring zero times.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// recordGapLocked records events overwritten before the cursor reached
// them as one failed delivery: never silent.
func (e *endpoint) recordGapLocked(g store.Gap, now time.Time) {
	n := g.To - g.From + 1
	dl := &delivery{Delivery: store.Delivery{
		ID: gateway.NewID("dlv_", now), WebhookID: e.id, EventSeq: g.From,
		Status: store.DeliveryFailed, CreatedAt: now, LastAttemptAt: now,
		LastError: fmt.Sprintf("events %d-%d (%d) were overwritten in the ring buffer before this endpoint took them; whether they matched is unknown", g.From, g.To, n),
	}, final: true}
	e.failed++
	e.src.countLocked(false)
	e.addLocked(dl)
	e.tailLocked(dl, 0)
	e.src.recordLocked(dl)
	e.opDeliveryFailedLocked(dl)
	e.d.metrics.overwritten.Add(float64(n))
	e.d.metrics.deliveries.WithLabelValues("overwritten").Inc()
	e.d.cfg.Logger.Warn("events overwritten before delivery", "webhook", e.id, "from", g.From, "to", g.To)
}

func (e *endpoint) addLocked(dl *delivery) {
	if e.log.add(dl) {
		e.d.metrics.logDropped.Inc()
	}
}

// launchLocked hands one attempt of dl to the endpoint's workers, taking
// a rate-limit token. Called by the endpoint goroutine, or by an attempt
// worker chaining a queue's prefetch (see settle).
func (e *endpoint) launchLocked(dl *delivery, manual bool) {
	e.inFlight++
	e.bucket.take()
	dl.busy = true
	// Alone in flight: its worker books it (see settle).
	direct := e.direct && e.inFlight == 1
	e.submitLocked(attemptJob{dl: dl, manual: manual, direct: direct, url: e.hook.URL, secrets: e.secrets, headers: e.headers,
		msgID: e.d.msgID(dl.EventSeq), body: dl.rec.JSON})
}

// needsRunLocked reports whether a result a worker just booked (see
// finish) gives the endpoint goroutine work: a slot it waits for, due
// retries or a replay to start, operational events to publish, or a drain
// to check. Otherwise the goroutine sleeps on: a delivery at a moderate
// rate costs it no wake-up besides the log's.
func (e *endpoint) needsRunLocked() bool {
	return e.slotWait.Load() || len(e.due) > 0 || e.replay != nil ||
		len(e.ops.events) > 0 || len(e.ops.forget) > 0 || e.d.draining()
}

// checkDrained closes drained once the endpoint has nothing left to do
// before the drain deadline.
func (e *endpoint) checkDrained() {
	target, draining := e.d.drainTarget()
	if !draining {
		return
	}
	e.mu.Lock()
	// An endpoint awaiting its handshake can deliver nothing: idle.
	idle := e.inFlight == 0 &&
		(!e.hook.Enabled || e.hook.AwaitingHandshake || (e.src.drainedLocked(target) && len(e.due) == 0 && e.soon.Load() == 0))
	e.mu.Unlock()
	if idle {
		e.drainOnce.Do(func() { close(e.drained) })
	}
}
