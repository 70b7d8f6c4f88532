package dispatch

// The queue source's shared bookkeeping: the delivery log every gateway
// writes to and reads (one state per attempt; the reader puts each
// delivery's history together) and the webhook's delivery totals.

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/eventgate/eventgate/store"
)

// countEvery is how long a final outcome may wait before it is added to
// the shared totals: adding is a stored JetStream message, so outcomes are
// added together, not one publish per delivery.
const countEvery = 250 * time.Millisecond

// recordLinger is how long a noted state may wait for others to share
// the store's work with (Record packs the states it gets together into
// few messages) while attempts are in flight; recordsPerFlush states go
// out at once, and so do the states noted when no attempt is in flight
// (nothing more is coming soon). Under load many states share a message;
// light traffic writes each at once, so that another gateway finds it.
const (
	recordLinger    = 5 * time.Millisecond
	recordsPerFlush = 64
)

// totalsTTL is how long the shared totals, as last read, stand for the
// current ones: stats are read by every API call and scrape.
const totalsTTL = time.Second

func (s *queueSource) countLocked(ok bool) {
	if s.counts == [2]uint64{} {
		s.countsDue = time.Now().Add(countEvery)
		s.newCounts = true
	}
	if ok {
		s.counts[0]++
	} else {
		s.counts[1]++
	}
}

// totals returns the shared totals (read at most once per totalsTTL)
// with this gateway's outcomes not yet added to them. When the store
// cannot be read it answers with what it read last.
func (s *queueSource) totals() (succeeded, failed uint64) {
	e := s.e
	e.mu.Lock()
	stale := time.Since(s.readAt) >= totalsTTL
	e.mu.Unlock()
	if stale {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		ok, fail, err := s.q.Totals(ctx)
		cancel()
		e.mu.Lock()
		if err == nil {
			s.read, s.readAt = [2]uint64{ok, fail}, time.Now()
		} else if e.ctx.Err() == nil {
			e.d.cfg.Logger.Warn("cannot read a webhook's delivery totals", "webhook", e.id, "err", err)
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range s.shown {
		s.shown[i] = max(s.shown[i], s.read[i]+s.counts[i])
	}
	return s.shown[0], s.shown[1]
}

// recordLocked notes dl's state for the shared delivery log.
//
// A state carries only the attempt that made it: the shared log's reader
// puts the history together from the states of one delivery, so that a
// state costs one attempt's bytes, not the whole history's.
func (s *queueSource) recordLocked(dl *delivery) {
	d := dl.Delivery
	d.History = nil
	if n := len(dl.History); n > 0 {
		d.History = []store.AttemptRecord{dl.History[n-1]}
	}
	if len(s.records) == 0 {
		s.recordsDue = time.Now().Add(recordLinger)
		s.newRecords = true
	}
	s.records = append(s.records, d)
}

// flush appends the noted states to the shared delivery log, and the
// noted outcomes to the shared totals, once they are due (final: now). It
// returns when what it kept falls due (zero: nothing kept).
func (s *queueSource) flush(final bool) time.Time {
	s.e.mu.Lock()
	var recs []store.Delivery
	if final || len(s.records) >= recordsPerFlush || s.e.inFlight == 0 || !time.Now().Before(s.recordsDue) {
		recs = s.records
		s.records = nil
	}
	var counts [2]uint64
	if s.counts != counts && (final || !time.Now().Before(s.countsDue)) {
		counts, s.counts = s.counts, [2]uint64{}
		s.readAt = time.Time{} // read them again: they have moved
	}
	s.newCounts, s.newRecords = false, false
	var due time.Time
	if s.counts != [2]uint64{} {
		due = s.countsDue
	}
	if len(s.records) > 0 {
		due = earliest(due, s.recordsDue)
	}
	s.e.mu.Unlock()
	if len(recs) > 0 {
		s.q.Record(recs...)
	}
	if counts != [2]uint64{} {
		s.q.Count(counts[0], counts[1])
	}
	return due
}

// adopt brings delivery id from the shared delivery log into this
// gateway's, for a manual retry of a delivery another gateway attempted.
func (s *queueSource) adopt(ctx context.Context, id string) error {
	e := s.e
	e.mu.Lock()
	known := e.log.find(id) != nil
	e.mu.Unlock()
	if known {
		return nil
	}
	sd, err := s.q.Delivery(ctx, id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.log.find(id) == nil {
		// Away: it is not in this gateway's system. One whose retry waits
		// in the queue is counted where it ends: here, when a manual
		// attempt delivers it (and settles that retry). Any other was
		// counted where it ended, or is held by another gateway, which
		// will count it: a manual attempt here moves no count.
		retry := sd.Status == store.DeliveryRetrying
		e.addLocked(&delivery{Delivery: sd, final: !retry, away: true, queuedRetry: retry})
	}
	e.mu.Unlock()
	return nil
}

// deliveries lists the shared delivery log with this gateway's
// newer states (attempts in flight) laid over it, newest first.
func (s *queueSource) deliveries(status store.DeliveryStatus, limit int, before string) []store.Delivery {
	e := s.e
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	size := e.d.cfg.DeliveryLogSize
	all, err := s.q.Deliveries(ctx, "", size)
	if err != nil {
		e.d.cfg.Logger.Warn("cannot read the shared delivery log; showing this gateway's", "webhook", e.id, "err", err)
	}
	e.mu.Lock()
	local := e.log.list("", size, "")
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
	skipping := before != ""
	for _, d := range all {
		if skipping {
			skipping = d.ID != before
			continue
		}
		if len(out) < limit && (status == "" || d.Status == status) {
			d.History = nil
			out = append(out, d)
		}
	}
	return out
}

// delivery returns delivery id with its history: this gateway's record
// when it is as far as the shared one, else the shared one.
func (s *queueSource) delivery(ctx context.Context, id string) (store.Delivery, error) {
	e := s.e
	e.mu.Lock()
	local, ok := e.log.detail(id)
	e.mu.Unlock()
	shared, err := s.q.Delivery(ctx, id)
	switch {
	case err == nil && (!ok || shared.Attempts > local.Attempts):
		return shared, nil
	case ok:
		return local, nil
	}
	return store.Delivery{}, err
}
