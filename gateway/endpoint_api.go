package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/eventgate/eventgate/store"
)

// The endpoint's methods called from other goroutines (the API, the
// metrics collector, Shutdown): they take the endpoint's mutex briefly and
// poke its goroutine, never start attempts themselves.

// retryNow queues a manual attempt of delivery id.
func (e *endpoint) retryNow(ctx context.Context, id string) (store.Delivery, error) {
	if e.q != nil {
		if err := e.adopt(ctx, id); err != nil {
			return store.Delivery{}, err
		}
	}
	e.mu.Lock()
	dl := e.log.find(id)
	if dl == nil {
		e.mu.Unlock()
		return store.Delivery{}, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if dl.busy {
		out := dl.Delivery
		e.mu.Unlock()
		return out, nil // already queued or in flight
	}
	seq, held := dl.EventSeq, dl.rec.JSON != nil
	if dl.EventID == "" {
		e.mu.Unlock()
		return store.Delivery{}, fmt.Errorf("delivery %s is an overwritten range, not an event: %w", id, store.ErrNotFound)
	}
	e.mu.Unlock()
	var rec store.Record
	if !held {
		var err error
		if rec, err = e.d.log.Get(ctx, seq); err != nil {
			return store.Delivery{}, fmt.Errorf("event %d is no longer buffered: %w", seq, store.ErrNotFound)
		}
	}
	e.mu.Lock()
	if !dl.busy {
		if !held && dl.rec.JSON == nil {
			dl.rec = rec
		}
		dl.busy = true
		if dl.Status != store.DeliveryRetrying {
			dl.Status = store.DeliveryPending
		}
		dl.NextAttemptAt = time.Now()
		e.due = append(e.due, dueItem{dl: dl, manual: true})
	}
	out := dl.Delivery
	e.mu.Unlock()
	e.poke()
	return out, nil
}

// undelivered counts, after the goroutines have stopped, the matching
// events not taken up to target, the attempts that were in flight and the
// deliveries waiting for a retry.
func (e *endpoint) undelivered(target uint64) (notTaken, inFlight, retrying int) {
	e.mu.Lock()
	cursor, filter, deleted := e.cursor, e.filter, e.deleted
	inFlight, retrying = e.inFlight, e.retrying
	for _, it := range e.due {
		if it.manual {
			retrying++
		}
	}
	e.mu.Unlock()
	if deleted || cursor >= target || e.q != nil { // a queue keeps what is not taken
		return 0, inFlight, retrying
	}
	page, err := e.d.log.Read(context.Background(), cursor, int(min(target-cursor, 1<<20)), filter, nil)
	if err == nil {
		for _, r := range page.Records {
			if r.Seq <= target {
				notTaken++
			}
		}
	}
	return notTaken, inFlight, retrying
}

// maxWaitingScan bounds how many log positions one stats call examines to
// count the events waiting for an endpoint.
const maxWaitingScan = 1 << 20

// waiting counts the matching events after cursor (up to maxWaitingScan
// positions) and how many of them were stored at or after since. It reads
// the log without holding the endpoint's lock.
func (e *endpoint) waiting(cursor uint64, filter store.Filter, since time.Time) (n, recent int) {
	buf := make([]store.Record, 0, 1024)
	for scanned := uint64(0); scanned < maxWaitingScan; {
		page, err := e.d.log.Read(context.Background(), cursor, cap(buf), filter, buf)
		if err != nil || page.Next <= cursor {
			break
		}
		for _, r := range page.Records {
			n++
			if r.StoredAt >= since.UnixNano() {
				recent++
			}
		}
		scanned += page.Next - cursor
		cursor = page.Next
		clear(page.Records)
	}
	return n, recent
}

func (e *endpoint) stats() Stats {
	newest := e.d.log.Bounds().Newest
	now := time.Now()
	e.mu.Lock()
	cursor, filter, qLag := e.cursor, e.filter, e.qLag
	e.mu.Unlock()
	var waiting, recent int
	if e.q != nil {
		// A queue's backlog is its NumPending (shared by every gateway);
		// the cursor means nothing there.
		waiting = int(qLag)
	} else {
		waiting, recent = e.waiting(cursor, filter, now.Add(-windowSeconds*time.Second))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	lambda, w := e.win.rates(now)
	s := Stats{
		InFlight: e.inFlight, Retrying: e.retrying, Succeeded: e.succeeded, Failed: e.failed,
		ArrivalRate: lambda + float64(recent)/windowSeconds, MeanTimeInSystem: w,
		InSystem: e.inSystem + waiting, Waiting: waiting,
	}
	if e.q != nil {
		s.Lag = e.qLag
	} else if newest > e.cursor {
		s.Lag = newest - e.cursor
	}
	return s
}

func (e *endpoint) deliveries(status store.DeliveryStatus, limit int) []store.Delivery {
	if e.q != nil {
		return e.sharedDeliveries(status, limit)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.log.list(status, limit)
}
