package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/eventgate/eventgate/store"
)

// The second source of deliveries: a webhook's shared queue
// (store.DeliveryQueues, one durable JetStream consumer per webhook that
// every gateway pulls from) instead of a cursor over the log. The
// endpoint pulls in batches and keeps a prefetch of up to
// prefetchFactor*Concurrency deliveries (and prefetchBytes of events)
// beside its attempts in flight, so
// that a slot freed by a finished attempt is filled at once, without a
// round trip to the server; a delivery that waits in the prefetch for a
// third of AckWait (the attempts ahead of it are slow) is marked in
// progress, which starts its AckWait again.
// One pull request is open at a time, for at least half of what the
// slots and the prefetch hold (a smaller one only when the endpoint would
// sit idle), so deliveries come in batches. A success is
// acked, a failure is handed back to the queue with the schedule's delay
// (NakWithDelay) for whichever gateway is free when it falls due, and a
// spent schedule is terminated; settling publishes without waiting for
// the server. Replays and manual retries stay local, as with the ring
// buffer. What the queue source shares besides deliveries (the delivery
// log, the totals) is in source_queue_log.go.

// fetchWait bounds one pull request: a request left open holds
// deliveries another gateway could take, and an idle endpoint asks again
// this often.
const fetchWait = 5 * time.Second

// queuedID is the delivery id of the queued event seq: the same on every
// gateway, so that a delivery keeps its id when another gateway retries
// it.
func queuedID(seq uint64) string { return "dlv_q" + strconv.FormatUint(seq, 10) }

// maxPulls is how many pull requests an endpoint keeps open at once. One:
// the server spreads messages over every open request of a consumer
// (round robin, not in order), and a message in a request the endpoint
// is not reading would wait there, its AckWait running.
const maxPulls = 1

// queueSource is a webhook's queue in a store that shares deliveries
// (store.DeliveryQueues). Its fields are guarded by the endpoint's mutex,
// but pulls, which only the endpoint goroutine touches.
type queueSource struct {
	e *endpoint
	q store.DeliveryQueue
	// pulls are the open pull requests (at most maxPulls). asked
	// counts the deliveries they may still bring; ready holds the
	// deliveries that came while every slot was taken (the prefetch), in
	// order; lag is the queue's NumPending as last seen.
	pulls      []*pull
	asked      int
	floor      uint64 // re-enabled at newest: deliveries at or below it are skipped
	ready      []store.Queued
	readyAt    []time.Time // when each of ready came, or was last kept (keepStaleLocked)
	readyBytes int         // of ready's events
	pullAfter  time.Time   // no pull before (pullPause)
	eventSize  int         // the events' recent size (a moving average of what came)
	lag        uint64
	records    []store.Delivery // states for the shared delivery log, written by flush
	recordsDue time.Time        // when records must go out: recordLinger after the first
	newRecords bool             // records noted since the endpoint goroutine last flushed
	// counts are final outcomes not yet added to the shared totals
	// (flush adds them); read is the totals as last read, at readAt;
	// shown is the most totals answered (they never go back, though a
	// read may not see an addition yet).
	counts    [2]uint64 // succeeded, failed
	newCounts bool      // counts noted since the endpoint goroutine last flushed
	countsDue time.Time // when counts must go out: countEvery after the first
	read      [2]uint64
	readAt    time.Time
	shown     [2]uint64
}

// pull is one open pull request.
type pull struct {
	ch         <-chan store.Queued
	end        context.CancelFunc
	asked, got int       // guarded by the endpoint's mutex
	start      time.Time // when it was asked
}

// pullPause is how long an endpoint waits before its next pull after one
// that ended at once with nothing (the store answered at once that it
// cannot serve: no responders, too many pulls waiting on the consumer, a
// leader changing): not a pull in a loop.
const pullPause = time.Second

// canTakeLocked: a queue has no drain target (other gateways go on), so
// a draining gateway takes nothing more.
func (s *queueSource) canTakeLocked(draining bool, _ uint64) bool { return !draining }

// prefetchFactor: up to prefetchFactor*Concurrency deliveries wait in
// ready beside the attempts in flight. A deep prefetch hides the round
// trips of the pulls (an R3 consumer's above all: measured on a
// three-node cluster, draining a backlog went from 8,453 to 12,115
// deliveries/s with 4 in place of 1, and to 14,357 with 8); holdLimit
// keeps it safe, prefetchBytes bounds its memory.
const prefetchFactor = 8

// eventOverhead is what a pulled message carries besides its event
// (subject, acknowledgement subject, headers), for the size estimate.
const eventOverhead = 512

// prefetchBytes bounds the events the prefetch holds. A pull asks for no
// more than the room left, in bytes too when the events' recent size says
// it could bring more (a byte bound costs JetStream: measured on an R3
// consumer, pulls with max_bytes delivered 22% less, so small events are
// bounded by count alone); an endpoint's first pull, before any size is
// known, asks for as many events as 1 MiB ones would fit; when sizes
// jump, one pull may bring more.
const prefetchBytes = 8 << 20

// prefetchLocked is how many deliveries may wait in ready beside the
// attempts in flight; none for a rate-limited webhook, whose deliveries
// wait for tokens, not for slots.
func (s *queueSource) prefetchLocked() int {
	if s.e.hook.RateLimit > 0 {
		return 0
	}
	return prefetchFactor * s.e.d.cfg.Concurrency
}

// holdLimit is how long a delivery may wait in ready before the queue is
// told it is still held (its AckWait starts again): a third of AckWait,
// so that with its attempt (at most the attempt timeout, under a third of
// AckWait too) it is settled before AckWait would hand it to another
// gateway, however slow the attempts ahead of it turn out.
func (s *queueSource) holdLimit() time.Duration { return s.e.d.ackWait() / 3 }

// take starts the prefetched deliveries in free slots, then opens a pull
// request for what the slots and the prefetch have room for, when can and
// none is open. Draining, it ends the open request and hands the
// prefetched deliveries back; an endpoint that cannot attempt (disabled,
// deleted, awaiting its handshake) hands them back for a second.
func (s *queueSource) take(can bool, free int, draining bool, _ *[]store.Record, wake, now time.Time) (<-chan struct{}, time.Time) {
	e := s.e
	if draining || (!can && free > 0) { // stopping, or it cannot attempt (disabled, awaiting its handshake)
		for _, p := range s.pulls {
			p.end() // its channel closes soon; what still comes is handed back
		}
	}
	var settles []func() error
	e.mu.Lock()
	switch {
	case draining:
		settles = s.handBackLocked(0)
	case !can && free > 0:
		settles = s.handBackLocked(time.Second)
	}
	settles = append(settles, s.keepStaleLocked(now)...)
	// free is what step counted; a worker may have chained into those
	// slots (or spent those tokens) since: check again.
	for can && free > 0 && len(s.ready) > 0 && e.canStartLocked(now) {
		launched, settle := s.takeLocked(s.popReadyLocked(), now)
		if launched {
			free--
		}
		if settle != nil {
			settles = append(settles, settle)
		}
	}
	want, batch := s.pullWantLocked(free)
	idle := len(s.pulls) == 0 && len(s.ready) == 0 && e.inFlight == 0
	if len(s.readyAt) > 0 { // wake up to keep the oldest if it still waits then
		oldest := slices.MinFunc(s.readyAt, time.Time.Compare)
		wake = earliest(wake, oldest.Add(s.holdLimit()))
	}
	room := prefetchBytes - s.readyBytes
	if now.Before(s.pullAfter) {
		wake = earliest(wake, s.pullAfter)
	}
	var maxBytes int      // none while want events of the recent size fit
	if s.eventSize == 0 { // nothing seen yet: the first pull is bounded by count, as if events were 1 MiB
		want = min(want, max(1, room>>20))
	}
	if want*s.eventSize > room {
		maxBytes = room
	}
	e.mu.Unlock()
	s.settle(settles)
	if !can || want <= 0 || len(s.pulls) >= maxPulls || (want < batch && !idle) || room <= 0 || now.Before(s.pullAfter) {
		return nil, wake
	}
	ctx, cancel := context.WithTimeout(e.ctx, fetchWait)
	ch, err := s.q.Fetch(ctx, want, maxBytes)
	if err != nil {
		cancel()
		if e.ctx.Err() == nil {
			e.d.cfg.Logger.Error("webhook cannot pull from its queue", "webhook", e.id, "err", err)
		}
		return nil, earliest(wake, now.Add(time.Second))
	}
	e.mu.Lock()
	s.pulls = append(s.pulls, &pull{ch: ch, end: cancel, asked: want, start: now})
	s.asked += want
	e.mu.Unlock()
	return nil, wake
}

// chainLocked starts the next prefetched delivery in the slot an attempt
// worker just freed, when the endpoint may start one now and nothing else
// goes first (due retries, a replay, a drain: the endpoint goroutine's
// step orders those). It returns how to settle, outside the lock, the
// prefetched deliveries it passed over (not for this webhook after all).
func (s *queueSource) chainLocked(now time.Time) (settles []func() error) {
	e := s.e
	for len(s.ready) > 0 && e.ctx.Err() == nil && len(e.due) == 0 && e.replay == nil && !e.deleted && e.hook.Enabled &&
		!e.hook.AwaitingHandshake && !e.d.draining() && e.canStartLocked(now) {
		launched, settle := s.takeLocked(s.popReadyLocked(), now)
		if settle != nil {
			settles = append(settles, settle)
		}
		if launched {
			return settles
		}
	}
	return settles
}

// needsEndpointLocked reports whether, after a worker chained, the
// endpoint goroutine has work: states or counts noted since its last
// flush (its timer does not know of them: flags, since two workers may
// note before either asks) or due at once, a
// prefetch low enough for a pull (as take decides), or nothing left in
// flight (the endpoint may be idle, or drained).
func (s *queueSource) needsEndpointLocked() bool {
	e := s.e
	if e.inFlight == 0 || s.newRecords || len(s.records) >= recordsPerFlush || s.newCounts {
		return true
	}
	want, batch := s.pullWantLocked(e.d.cfg.Concurrency - e.inFlight)
	return want >= batch
}

// pullWantLocked returns how many deliveries a pull would ask for with
// free slots (what they and the prefetch have room for, less what is
// prefetched and asked already), and the smallest pull worth making:
// pulls go in batches, not one round trip per delivery (take makes a
// smaller one only when the endpoint would otherwise sit idle).
func (s *queueSource) pullWantLocked(free int) (want, batch int) {
	prefetch := s.prefetchLocked()
	return free + prefetch - len(s.ready) - s.asked, max(1, (s.e.d.cfg.Concurrency+prefetch)/2)
}

// popReadyLocked takes the oldest prefetched delivery out of ready.
func (s *queueSource) popReadyLocked() store.Queued {
	m := s.ready[0]
	s.ready[0] = store.Queued{}
	s.ready = s.ready[1:]
	s.readyAt = s.readyAt[1:]
	s.readyBytes -= len(m.JSON)
	return m
}

// handBackLocked returns the prefetched deliveries to the queue, to be
// handed out again after delay.
func (s *queueSource) handBackLocked(delay time.Duration) []func() error {
	out := make([]func() error, 0, len(s.ready))
	for i, m := range s.ready {
		out = append(out, func() error { return m.Msg.NakWithDelay(delay) })
		s.ready[i] = store.Queued{}
	}
	s.ready, s.readyAt, s.readyBytes = s.ready[:0], s.readyAt[:0], 0
	return out
}

// keepStaleLocked tells the queue that the prefetched deliveries that
// have waited holdLimit are still held (the attempts ahead of them are
// slow): their AckWait starts again. Handing them back instead would
// count a delivery each time, and the count is the retries spent.
func (s *queueSource) keepStaleLocked(now time.Time) []func() error {
	var out []func() error
	stale := now.Add(-s.holdLimit())
	for i, at := range s.readyAt { // ready keeps its order; readyAt is when each was last kept
		if !at.After(stale) {
			out = append(out, s.ready[i].Msg.InProgress)
			s.readyAt[i] = now
		}
	}
	return out
}

// settle runs settlements outside the lock, logging failures.
func (s *queueSource) settle(fns []func() error) {
	for _, fn := range fns {
		if err := fn(); err != nil && s.e.ctx.Err() == nil {
			s.e.d.cfg.Logger.Warn("cannot settle a queued delivery", "webhook", s.e.id, "err", err)
		}
	}
}

func (s *queueSource) incoming() <-chan store.Queued {
	if len(s.pulls) == 0 {
		return nil
	}
	return s.pulls[0].ch
}

// received books a delivery the oldest pull request brought: attempted at
// once when nothing was prefetched before it and the endpoint may start an
// attempt now (as step counts: a free slot, room under MaxRetrying, a
// rate-limit token), kept in ready otherwise. ok false is the request's
// end.
func (s *queueSource) received(m store.Queued, ok bool) {
	e := s.e
	p := s.pulls[0]
	if !ok {
		p.end()
		s.pulls[0] = nil
		s.pulls = s.pulls[1:]
		e.mu.Lock()
		if p.got == 0 && p.asked > 0 {
			s.lag = 0 // room and nothing came: nothing is waiting
			if time.Since(p.start) < pullPause {
				s.pullAfter = time.Now().Add(pullPause)
			}
		}
		s.asked -= max(0, p.asked-p.got)
		e.mu.Unlock()
		return
	}
	var settle func() error
	e.mu.Lock()
	if p.got < p.asked {
		s.asked--
	}
	p.got++
	s.lag = m.Pending
	s.eventSize += (len(m.JSON) + eventOverhead - s.eventSize) / 4 // a jump shows within a few events
	now := time.Now()
	if len(s.ready) == 0 && e.canStartLocked(now) {
		_, settle = s.takeLocked(m, now)
	} else {
		s.ready = append(s.ready, m)
		s.readyAt = append(s.readyAt, now)
		s.readyBytes += len(m.JSON)
	}
	e.mu.Unlock()
	if settle != nil {
		s.settle([]func() error{settle})
	}
}

// takeLocked starts the attempt of a delivery the queue handed out and
// reports true, or returns how to settle it at once: acked when it does
// not concern this webhook (an overlapping filter, types changed, its own
// operational event, at or below where a re-enable resumed) or was
// delivered meanwhile by a manual retry; handed
// back when the endpoint cannot attempt it now.
func (s *queueSource) takeLocked(m store.Queued, now time.Time) (bool, func() error) {
	e := s.e
	id := queuedID(m.Seq)
	dl := e.log.find(id)
	switch {
	case !e.filter.Match(m.Type) || e.isSelf(m.Record) || m.Seq <= s.floor:
		return false, m.Msg.Ack
	case e.d.draining():
		return false, func() error { return m.Msg.NakWithDelay(0) }
	case e.deleted || !e.hook.Enabled || e.hook.AwaitingHandshake || (dl != nil && dl.busy):
		return false, func() error { return m.Msg.NakWithDelay(time.Second) }
	case dl != nil && dl.Status == store.DeliverySucceeded:
		return false, m.Msg.Ack
	}
	if dl == nil {
		created := now
		if m.Delivered > 1 && m.StoredAt > 0 {
			// Another gateway took it first (a retry, or a handover): it
			// was created then, not now. The event's store time is the
			// nearest this gateway knows, so that the shared log does
			// not list it as new.
			created = time.Unix(0, m.StoredAt)
		}
		dl = &delivery{Delivery: store.Delivery{ID: id, WebhookID: e.id, EventSeq: m.Seq, EventID: m.ID, CreatedAt: created}}
		e.addLocked(dl)
	}
	dl.rec, dl.msg, dl.typ = m.Record, m.Msg, m.Type
	dl.storedAt, dl.takenAt = time.Unix(0, m.StoredAt), now
	dl.retries = m.Delivered - 1
	dl.Attempts = max(dl.Attempts, m.Delivered-1)
	dl.Status, dl.NextAttemptAt = store.DeliveryPending, now
	if m.Delivered > 1 {
		dl.Status = store.DeliveryRetrying
	}
	dl.final, dl.away, dl.queuedRetry = false, false, false
	e.win.arrive(now, dl.storedAt, 1)
	e.inSystem++
	e.launchLocked(dl, false)
	return true, nil
}

// settleLocked settles the queued message the attempt owned: a retry
// waits in the queue, for whichever gateway is free when it falls due,
// and a released attempt is handed to another gateway at once (a crash
// settles nothing: AckWait hands it on). A manual attempt owns no
// message; when it delivers the queued delivery, the retry that may wait
// in the queue for it is void: the queue forgets it, wherever it waits.
func (s *queueSource) settleLocked(dl *delivery, v verdict, delay time.Duration, owned bool) func() error {
	if !owned {
		if v != verdictAck || !dl.queuedRetry || dl.ID != queuedID(dl.EventSeq) {
			return nil // nothing of it waits in the queue, or another gateway holds it
		}
		dl.queuedRetry = false
		seq := dl.EventSeq
		return func() error { return s.q.Forget(seq) }
	}
	if dl.msg == nil {
		return nil
	}
	msg := dl.msg
	dl.msg = nil
	switch v {
	case verdictAck:
		return msg.Ack
	case verdictTerm:
		return msg.Term
	case verdictRetry:
		s.leaveLocked(dl)
		dl.queuedRetry = true
		return func() error { return msg.NakWithDelay(delay) }
	case verdictRelease:
		s.leaveLocked(dl)
		return func() error { return msg.NakWithDelay(0) }
	}
	return nil
}

// retryPendingLocked: a retrying delivery's retry waits in the queue.
func (s *queueSource) retryPendingLocked(dl *delivery) bool {
	return dl.Status == store.DeliveryRetrying
}

func (s *queueSource) handsBack() bool           { return true }
func (s *queueSource) drainedLocked(uint64) bool { return len(s.pulls) == 0 } // what an ended pull still brings is handed back first
func (s *queueSource) moveToLocked(seq uint64) uint64 {
	// Resuming at newest: what the queue still hands out at or below seq
	// (a pull on the queue before its Reset) is skipped.
	s.floor = max(s.floor, seq)
	return seq
}
func (s *queueSource) notTaken(uint64) int { return 0 } // the queue keeps them
func (s *queueSource) shared() bool        { return true }

// apply changes the queue's types, and on a re-enable restarts it after
// the newest seq (resume newest) or reads where it stands.
func (s *queueSource) apply(ctx context.Context, w store.Webhook, typesChanged, reenabled, newest bool, after uint64) (uint64, error) {
	if typesChanged {
		if err := s.q.SetTypes(ctx, w.Types); err != nil {
			return after, err
		}
	}
	switch {
	case reenabled && newest:
		return after, s.q.Reset(ctx, after)
	case reenabled:
		return s.q.Position(ctx)
	}
	return after, nil
}

// backlog is the queue's NumPending, shared by every gateway, as last
// seen: the events not yet handed to any gateway.
func (s *queueSource) backlog(time.Time) (waiting, recent int, lag uint64) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return int(s.lag), 0, s.lag
}

// leaveLocked books a queued delivery handed back to the queue: it is no
// longer in this gateway's system, and its copy of the event is released.
func (s *queueSource) leaveLocked(dl *delivery) {
	if !dl.away {
		dl.away = true
		if !dl.final {
			s.e.inSystem--
		}
	}
	dl.rec = store.Record{}
}

// openSource returns ep's source: a cursor over the log starting after
// seq after, or, when the log shares deliveries, webhook w's queue (one
// made now starts after seq after).
func (d *Dispatcher) openSource(ctx context.Context, ep *endpoint, w store.Webhook, after uint64) (source, error) {
	if d.queues == nil {
		return &logSource{e: ep, cursor: after}, nil
	}
	q, err := d.queues.OpenQueue(ctx, w, store.QueueConfig{
		MaxPending: (1+prefetchFactor)*d.cfg.Concurrency + d.cfg.MaxRetrying, // in flight, prefetched, waiting for a retry
		AckWait:    d.ackWait(),
		After:      after,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	return &queueSource{e: ep, q: q}, nil
}

// ackWait is how long a queued delivery may stay unsettled before the
// queue hands it to another gateway: twice the attempt timeout and a
// margin (a prefetched delivery waits at most a third of it, holdLimit,
// before its attempt starts or it is handed back).
func (d *Dispatcher) ackWait() time.Duration {
	return 2*d.cfg.Timeout + min(max(d.cfg.Timeout/2, time.Second), 30*time.Second)
}
