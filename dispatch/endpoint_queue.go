package dispatch

import (
	"cmp"
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
// endpoint goroutine keeps one pull request open for as many deliveries
// as it has free slots (and rate-limit tokens); each one that comes is
// attempted at once. A success is acked, a failure is handed back to the
// queue with the schedule's delay (NakWithDelay) for whichever gateway
// is free when it falls due, and a spent schedule is terminated. Replays
// and manual retries stay local, as with the ring buffer.

// fetchWait bounds one pull request: a request left open holds
// deliveries another gateway could take, and an idle endpoint asks again
// this often.
const fetchWait = 5 * time.Second

// queuedID is the delivery id of the queued event seq: the same on every
// gateway, so that a delivery keeps its id when another gateway retries
// it.
func queuedID(seq uint64) string { return "dlv_q" + strconv.FormatUint(seq, 10) }

// stepQueue opens a pull request for n deliveries when can and none is
// open, and ends the open one when draining. Called by the endpoint
// goroutine without the lock; it returns when to wake up.
func (e *endpoint) stepQueue(can bool, n int, draining bool, wake, now time.Time) time.Time {
	if draining && e.fetch != nil {
		e.fetchEnd() // its channel closes soon; what still comes is handed back
	}
	if !can || e.fetch != nil {
		return wake
	}
	ctx, cancel := context.WithTimeout(e.ctx, fetchWait)
	ch, err := e.q.Fetch(ctx, n)
	if err != nil {
		cancel()
		if e.ctx.Err() == nil {
			e.d.cfg.Logger.Error("webhook cannot pull from its queue", "webhook", e.id, "err", err)
		}
		return earliest(wake, now.Add(time.Second))
	}
	e.fetch, e.fetchEnd = ch, cancel
	e.mu.Lock()
	e.fetchLeft, e.fetchGot = n, 0
	e.mu.Unlock()
	return wake
}

// fetchDone books the end of the pull request.
func (e *endpoint) fetchDone() {
	e.fetchEnd()
	e.fetch, e.fetchEnd = nil, nil
	e.mu.Lock()
	if e.fetchGot == 0 && e.fetchLeft > 0 {
		e.qLag = 0 // free slots and nothing came: nothing is waiting
	}
	e.fetchLeft = 0
	e.mu.Unlock()
}

// takeQueued starts the attempt of a delivery the queue handed out, or
// settles it at once: acked when it does not concern this webhook (an
// overlapping filter, types changed, its own operational event) or was
// delivered meanwhile by a manual retry; handed back when the endpoint
// cannot attempt it now.
func (e *endpoint) takeQueued(m store.Queued) {
	now := time.Now()
	var settle func() error
	e.mu.Lock()
	e.fetchLeft = max(0, e.fetchLeft-1)
	e.fetchGot++
	e.qLag = m.Pending
	id := queuedID(m.Seq)
	dl := e.log.find(id)
	switch {
	case !e.filter.Match(m.Type) || e.isSelf(m.Record):
		settle = m.Msg.Ack
	case e.d.draining.Load():
		settle = func() error { return m.Msg.NakWithDelay(0) }
	case e.deleted || !e.hook.Enabled || e.hook.AwaitingHandshake || (dl != nil && dl.busy):
		settle = func() error { return m.Msg.NakWithDelay(time.Second) }
	case dl != nil && dl.Status == store.DeliverySucceeded:
		settle = m.Msg.Ack
	default:
		if dl == nil {
			dl = &delivery{Delivery: store.Delivery{ID: id, WebhookID: e.id, EventSeq: m.Seq, EventID: m.ID, CreatedAt: now}}
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
		dl.final = false
		e.win.arrive(now, dl.storedAt, 1)
		e.inSystem++
		e.launchLocked(dl, false)
	}
	e.mu.Unlock()
	if settle != nil {
		if err := settle(); err != nil && e.ctx.Err() == nil {
			e.d.cfg.Logger.Warn("cannot settle a queued delivery", "webhook", e.id, "seq", m.Seq, "err", err)
		}
	}
}

// leaveLocked books a queued delivery handed back to the queue: it is no
// longer in this gateway's system, and its copy of the event is released.
func (e *endpoint) leaveLocked(dl *delivery) {
	if !dl.final {
		dl.final = true
		e.inSystem--
	}
	dl.rec = store.Record{}
}

// recordLocked queues dl's state for the shared delivery log (written by
// flushOps, outside the lock).
func (e *endpoint) recordLocked(dl *delivery) {
	if e.q != nil {
		d := dl.Delivery
		e.ops = append(e.ops, opEvent{record: &d})
	}
}

// adopt brings delivery id from the shared delivery log into this
// gateway's, for a manual retry of a delivery another gateway attempted.
func (e *endpoint) adopt(ctx context.Context, id string) error {
	e.mu.Lock()
	known := e.log.find(id) != nil
	e.mu.Unlock()
	if known {
		return nil
	}
	sd, err := e.q.Delivery(ctx, id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.log.find(id) == nil {
		// final: another gateway counted it; a manual attempt here moves
		// no count.
		e.addLocked(&delivery{Delivery: sd, final: true})
	}
	e.mu.Unlock()
	return nil
}

// sharedDeliveries lists the shared delivery log with this gateway's
// newer states (attempts in flight) laid over it, newest first.
func (e *endpoint) sharedDeliveries(status store.DeliveryStatus, limit int) []store.Delivery {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	size := e.d.cfg.DeliveryLogSize
	all, err := e.q.Deliveries(ctx, "", size)
	if err != nil {
		e.d.cfg.Logger.Warn("cannot read the shared delivery log; showing this gateway's", "webhook", e.id, "err", err)
	}
	e.mu.Lock()
	local := e.log.list("", size)
	e.mu.Unlock()
	at := make(map[string]int, len(all))
	for i, d := range all {
		at[d.ID] = i
	}
	for _, l := range local {
		i, ok := at[l.ID]
		switch {
		case !ok:
			at[l.ID] = len(all)
			all = append(all, l)
		case l.Attempts >= all[i].Attempts:
			if all[i].CreatedAt.Before(l.CreatedAt) {
				l.CreatedAt = all[i].CreatedAt
			}
			all[i] = l
		}
	}
	slices.SortFunc(all, func(a, b store.Delivery) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(b.EventSeq, a.EventSeq); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	out := make([]store.Delivery, 0, min(limit, len(all)))
	for _, d := range all {
		if len(out) < limit && (status == "" || d.Status == status) {
			out = append(out, d)
		}
	}
	return out
}

// openQueue opens webhook w's queue when the log shares deliveries (nil
// otherwise); a queue made now starts after seq after.
func (d *Dispatcher) openQueue(ctx context.Context, w store.Webhook, after uint64) (store.DeliveryQueue, error) {
	if d.queues == nil {
		return nil, nil
	}
	q, err := d.queues.OpenQueue(ctx, w, store.QueueConfig{
		MaxPending: d.cfg.Concurrency + d.cfg.MaxRetrying,
		AckWait:    d.ackWait(),
		After:      after,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	return q, nil
}

// ackWait is how long a queued delivery may stay unsettled before the
// queue hands it to another gateway: the attempt timeout and a margin.
func (d *Dispatcher) ackWait() time.Duration {
	return d.cfg.Timeout + min(max(d.cfg.Timeout/2, time.Second), 30*time.Second)
}
