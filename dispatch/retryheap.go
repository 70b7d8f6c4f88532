package dispatch

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// retryEntry is one delivery waiting for its next attempt. It holds its own
// copy of the record (via the delivery), so the event survives the ring
// overwriting it.
type retryEntry struct {
	due  time.Time
	ep   *endpoint
	dlv  *delivery
	soon bool // counted in ep.soon: due before the shutdown deadline
	idx  int
}

// retryHeap is the dispatcher's one timer heap of waiting retries. A
// waiting retry costs an entry here, never a goroutine. One goroutine
// (run) hands due entries to their endpoints. Safe for concurrent use.
type retryHeap struct {
	mu       sync.Mutex
	items    entries
	wake     chan struct{} // 1-slot: the earliest entry changed
	deadline time.Time     // shutdown deadline; zero until Shutdown
	draining bool
}

func newRetryHeap() *retryHeap { return &retryHeap{wake: make(chan struct{}, 1)} }

// push adds an entry. It never blocks on the heap's goroutine.
func (h *retryHeap) push(e *retryEntry) {
	h.mu.Lock()
	if h.draining && (h.deadline.IsZero() || !e.due.After(h.deadline)) {
		e.soon = true
		e.ep.soon.Add(1)
	}
	heap.Push(&h.items, e)
	first := e.idx == 0
	h.mu.Unlock()
	if first {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// removeEndpoint drops every entry of ep (a deleted webhook), so that
// their copies of events are freed now rather than when they fall due,
// up to the schedule's longest delay later.
func (h *retryHeap) removeEndpoint(ep *endpoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.items[:0]
	for _, e := range h.items {
		if e.ep == ep {
			if e.soon {
				ep.soon.Add(-1)
			}
			e.idx = -1
			continue
		}
		kept = append(kept, e)
	}
	clear(h.items[len(kept):])
	h.items = kept
	for i, e := range h.items {
		e.idx = i
	}
	heap.Init(&h.items)
}

// remove takes e out of the heap before it falls due, and reports whether
// it was there (false once run has handed it out).
func (h *retryHeap) remove(e *retryEntry) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.idx < 0 || e.idx >= len(h.items) || h.items[e.idx] != e {
		return false
	}
	heap.Remove(&h.items, e.idx)
	if e.soon {
		e.ep.soon.Add(-1)
	}
	return true
}

// drain marks every entry due by deadline (all of them for a zero
// deadline) as one the endpoints must wait for before they count as
// drained, and does the same for entries pushed from now on.
func (h *retryHeap) drain(deadline time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.draining, h.deadline = true, deadline
	for _, e := range h.items {
		if !e.soon && (deadline.IsZero() || !e.due.After(deadline)) {
			e.soon = true
			e.ep.soon.Add(1)
		}
	}
}

// run hands each entry to its endpoint when it falls due, until ctx ends.
func (h *retryHeap) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*retryEntry
	for {
		h.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(h.items) > 0 && !h.items[0].due.After(now) {
			due = append(due, heap.Pop(&h.items).(*retryEntry))
		}
		next := time.Hour
		if len(h.items) > 0 {
			next = h.items[0].due.Sub(now)
		}
		h.mu.Unlock()
		for i, e := range due {
			e.ep.retryDue(e)
			due[i] = nil
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-h.wake:
		case <-ctx.Done():
			return
		}
	}
}

// entries implements heap.Interface, earliest due first.
type entries []*retryEntry

func (s entries) Len() int           { return len(s) }
func (s entries) Less(i, j int) bool { return s[i].due.Before(s[j].due) }
func (s entries) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].idx, s[j].idx = i, j
}
func (s *entries) Push(x any) {
	e := x.(*retryEntry)
	e.idx = len(*s)
	*s = append(*s, e)
}
func (s *entries) Pop() any {
	old := *s
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	e.idx = -1
	return e
}
