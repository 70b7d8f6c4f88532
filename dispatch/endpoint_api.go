package dispatch

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
	if err := e.src.adopt(ctx, id); err != nil {
		return store.Delivery{}, err
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
	inFlight, retrying = e.inFlight, e.retrying
	for _, it := range e.due {
		if it.manual {
			retrying++
		}
	}
	e.mu.Unlock()
	return e.src.notTaken(target), inFlight, retrying
}

// maxCountScan bounds how many log positions one countMatching examines.
const maxCountScan = 1 << 20

// countMatching counts the events matching filter with after < seq <=
// until (examining at most maxCountScan positions), and how many of them
// were stored at or after since. It reads in pages of 1024 into one
// buffer, holding no lock of the caller's.
func countMatching(log store.Log, after, until uint64, filter store.Filter, since time.Time) (n, recent int) {
	buf := make([]store.Record, 0, 1024)
	for start := after; after < until && after-start < maxCountScan; {
		page, err := log.Read(context.Background(), after, cap(buf), filter, buf)
		if err != nil || page.Next <= after {
			break
		}
		for _, r := range page.Records {
			if r.Seq > until {
				break
			}
			n++
			if r.StoredAt >= since.UnixNano() {
				recent++
			}
		}
		after = page.Next
		clear(page.Records)
	}
	return n, recent
}

// waitingTTL is how long a count of an endpoint's waiting events may be
// reused while its cursor stands still (the log may have grown since): a
// stuck or disabled endpoint's backlog is then scanned at most once a
// second however often stats are read (every API call and scrape).
const waitingTTL = time.Second

// waitingCount is the last count of the events waiting for an endpoint.
type waitingCount struct {
	cursor, newest uint64
	at             time.Time
	n, recent      int
}

func (e *endpoint) stats() Stats {
	now := time.Now()
	waiting, recent, lag := e.src.backlog(now.Add(-windowSeconds * time.Second))
	succeeded, failed := e.src.totals()
	e.mu.Lock()
	defer e.mu.Unlock()
	lambda, w := e.win.rates(now)
	return Stats{
		InFlight: e.inFlight, Retrying: e.retrying, Succeeded: succeeded, Failed: failed,
		ArrivalRate: lambda + float64(recent)/windowSeconds, MeanTimeInSystem: w,
		InSystem: e.inSystem + waiting, Waiting: waiting, Lag: lag,
	}
}

func (e *endpoint) deliveries(status store.DeliveryStatus, limit int, before string) []store.Delivery {
	return e.src.deliveries(status, limit, before)
}
