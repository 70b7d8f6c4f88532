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
	notTaken, _ = countMatching(e.d.log, cursor, target, filter, time.Time{})
	return notTaken, inFlight, retrying
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
	newest := e.d.log.Bounds().Newest
	now := time.Now()
	e.mu.Lock()
	cursor, filter, wc, qLag := e.cursor, e.filter, e.waitCount, e.qLag
	e.mu.Unlock()
	switch {
	case e.q != nil:
		// A queue's backlog is its NumPending (shared by every gateway);
		// the cursor means nothing there.
		wc = waitingCount{n: int(qLag)}
	case cursor >= newest: // caught up: nothing waits, no scan
		wc = waitingCount{cursor: cursor, newest: newest, at: now}
	case wc.cursor != cursor || (wc.newest != newest && now.Sub(wc.at) >= waitingTTL):
		wc = waitingCount{cursor: cursor, newest: newest, at: now}
		wc.n, wc.recent = countMatching(e.d.log, cursor, newest, filter, now.Add(-windowSeconds*time.Second))
	}
	waiting, recent := wc.n, wc.recent
	e.mu.Lock()
	e.waitCount = wc
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
