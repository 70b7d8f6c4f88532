package dispatch

import (
	"container/heap"
	"testing"
	"time"
)

func TestRetryHeapRemoveEndpointFreesItsEntries(t *testing.T) {
	h := newRetryHeap()
	a, b := &endpoint{}, &endpoint{}
	t0 := time.Unix(0, 0)
	for i := range 20 {
		ep := a
		if i%3 == 0 {
			ep = b
		}
		h.push(&retryEntry{due: t0.Add(time.Duration((i*7)%20) * time.Second), ep: ep, dlv: &delivery{}})
	}
	h.removeEndpoint(a)
	if got := h.items.Len(); got != 7 {
		t.Fatalf("%d entries left, want b's 7", got)
	}
	var last time.Time
	for h.items.Len() > 0 {
		e := heap.Pop(&h.items).(*retryEntry)
		if e.ep != b || e.due.Before(last) {
			t.Fatalf("popped %+v after %v: wrong endpoint or heap order broken", e, last)
		}
		last = e.due
	}
}
