package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/eventgate/eventgate/store"
)

// logSource is an endpoint's own cursor over the log: it reads the
// matching events after the cursor into free slots, and a delivery whose
// attempt failed waits for its retry as an entry in the dispatcher's
// retry heap, holding its own copy of the event. Its fields are guarded by
// the endpoint's mutex.
type logSource struct {
	e         *endpoint
	cursor    uint64
	waitCount waitingCount // the last count of waiting events, for stats
}

func (s *logSource) canTakeLocked(draining bool, target uint64) bool {
	return !draining || s.cursor < target
}

// take reads up to free matching events after the cursor, drops the
// gateway's operational events about this very webhook, records a gap as
// a failed delivery and launches the rest. While draining it reads no
// further than target.
func (s *logSource) take(can bool, free int, draining bool, buf *[]store.Record, wake, now time.Time) (<-chan struct{}, time.Time) {
	e, d := s.e, s.e.d
	if !can || free <= 0 {
		if can {
			return store.Ready, wake // a replay used the slots: read live next round
		}
		return nil, wake
	}
	target, _ := d.drainTarget()
	e.mu.Lock()
	cursor, filter := s.cursor, e.filter
	e.mu.Unlock()

	page, err := d.log.Read(e.ctx, cursor, free, filter, (*buf)[:0])
	if err != nil {
		if e.ctx.Err() == nil {
			d.cfg.Logger.Error("webhook cannot read the log", "webhook", e.id, "err", err)
		}
		// The log is failing: try again in a second.
		return nil, earliest(wake, now.Add(time.Second))
	}
	*buf = page.Records
	recs, next := page.Records, page.Next
	if draining && next > target {
		for len(recs) > 0 && recs[len(recs)-1].Seq > target {
			recs = recs[:len(recs)-1]
		}
		next = target
	}
	recs = e.dropSelf(recs)

	now = time.Now()
	e.mu.Lock()
	if s.cursor != cursor || e.deleted {
		e.mu.Unlock()
		return store.Ready, wake // moved meanwhile (resume newest): read again
	}
	s.cursor = next
	if page.Gap != nil {
		e.recordGapLocked(*page.Gap, now)
	}
	for i := range recs {
		e.takeLocked(recs[i], now, "")
	}
	e.mu.Unlock()
	clear(*buf) // do not pin records in the read buffer
	if draining && next >= target {
		return nil, wake
	}
	return d.log.Wait(next), wake
}

func (s *logSource) incoming() <-chan store.Queued { return nil }
func (s *logSource) received(store.Queued, bool)   {}

// settleLocked: a retry becomes an entry in the retry heap; the rest needs
// nothing more (the delivery log already has the outcome).
func (s *logSource) settleLocked(dl *delivery, v verdict, _ time.Duration, _ bool) func() error {
	e := s.e
	switch v {
	case verdictRetry:
		ent := &retryEntry{due: dl.NextAttemptAt, ep: e, dlv: dl}
		dl.entry = ent
		e.retrying++
		e.d.retries.push(ent)
	case verdictStands:
		dl.NextAttemptAt = dl.entry.due
	}
	return nil
}

func (s *logSource) retryPendingLocked(dl *delivery) bool { return dl.entry != nil }
func (s *logSource) handsBack() bool                      { return false }
func (s *logSource) drainedLocked(target uint64) bool     { return s.cursor >= target }

func (s *logSource) apply(_ context.Context, _ store.Webhook, _, _, _ bool, after uint64) (uint64, error) {
	return after, nil
}

func (s *logSource) moveToLocked(seq uint64) uint64 {
	s.cursor = max(s.cursor, seq)
	return s.cursor
}

// backlog counts the matching events after the cursor, reusing the last
// count for waitingTTL while the cursor stands still.
func (s *logSource) backlog(since time.Time) (waiting, recent int, lag uint64) {
	e := s.e
	newest := e.d.log.Bounds().Newest
	now := time.Now()
	e.mu.Lock()
	cursor, filter, wc := s.cursor, e.filter, s.waitCount
	e.mu.Unlock()
	switch {
	case cursor >= newest: // caught up: nothing waits, no scan
		wc = waitingCount{cursor: cursor, newest: newest, at: now}
	case wc.cursor != cursor || (wc.newest != newest && now.Sub(wc.at) >= waitingTTL):
		wc = waitingCount{cursor: cursor, newest: newest, at: now}
		wc.n, wc.recent = countMatching(e.d.log, cursor, newest, filter, since)
	}
	e.mu.Lock()
	s.waitCount = wc
	if newest > s.cursor {
		lag = newest - s.cursor
	}
	e.mu.Unlock()
	return wc.n, wc.recent, lag
}

func (s *logSource) notTaken(target uint64) int {
	e := s.e
	e.mu.Lock()
	cursor, filter, deleted := s.cursor, e.filter, e.deleted
	e.mu.Unlock()
	if deleted || cursor >= target {
		return 0
	}
	n, _ := countMatching(e.d.log, cursor, target, filter, time.Time{})
	return n
}

func (s *logSource) adopt(context.Context, string) error { return nil }

func (s *logSource) deliveries(status store.DeliveryStatus, limit int, before string) []store.Delivery {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return s.e.log.list(status, limit, before)
}

func (s *logSource) delivery(_ context.Context, id string) (store.Delivery, error) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	if d, ok := s.e.log.detail(id); ok {
		return d, nil
	}
	return store.Delivery{}, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
}

func (s *logSource) recordLocked(*delivery) {}
func (s *logSource) countLocked(bool)       {}

func (s *logSource) totals() (succeeded, failed uint64) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return s.e.succeeded, s.e.failed
}
func (s *logSource) flush(bool) time.Time { return time.Time{} }
func (s *logSource) shared() bool         { return false }
