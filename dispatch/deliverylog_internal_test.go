package dispatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

// TestDeliveryLogResponseBudget: the log holds at most MaxResponseBytes of
// response bodies, dropping the oldest first and never the newest
// attempt's; its count matches the bodies held, also across eviction from
// the ring and retries of old deliveries.
func TestDeliveryLogResponseBudget(t *testing.T) {
	l := newDeliveryLog(100)
	body := strings.Repeat("x", store.MaxResponseBody)
	perBudget := MaxResponseBytes / len(body)
	var all []*delivery
	check := func(when string) {
		t.Helper()
		held := 0
		for _, dl := range l.byID {
			held += responseBytes(dl.History)
		}
		if held != l.respBytes {
			t.Fatalf("%s: counted %d bytes, the log holds %d", when, l.respBytes, held)
		}
		if l.respBytes > MaxResponseBytes {
			t.Fatalf("%s: %d bytes held, over the budget of %d", when, l.respBytes, MaxResponseBytes)
		}
	}
	for i := range 3 * perBudget / 2 { // 384 deliveries: past the budget and the ring's 100
		dl := &delivery{Delivery: store.Delivery{ID: fmt.Sprint("d", i)}}
		all = append(all, dl)
		l.add(dl)
		l.addAttempt(dl, store.AttemptRecord{Response: body})
		check(fmt.Sprint("after delivery ", i))
		if dl.History[0].Response != body {
			t.Fatalf("delivery %d lost its own newest body", i)
		}
	}
	// Old deliveries still in the log retry, some past the attempt cap;
	// an evicted one too (its bytes are no longer counted).
	for _, i := range []int{300, 301, 383, 10} {
		for range store.MaxAttemptHistory + 2 {
			l.addAttempt(all[i], store.AttemptRecord{Response: body})
			check(fmt.Sprint("after a retry of ", i))
		}
	}
	if got := all[383].History[len(all[383].History)-1].Response; got != body {
		t.Fatal("the newest attempt lost its body")
	}
}

// BenchmarkDeliveryLogOverBudget: one attempt with a body into a full log
// that is over its response budget, the steady state of a busy webhook
// whose receiver answers with bodies.
func BenchmarkDeliveryLogOverBudget(b *testing.B) {
	l := newDeliveryLog(DefaultDeliveryLogSize)
	body := strings.Repeat("x", 2<<10)
	for i := range b.N + DefaultDeliveryLogSize {
		dl := &delivery{Delivery: store.Delivery{ID: fmt.Sprint("d", i)}}
		if i == DefaultDeliveryLogSize {
			b.ResetTimer()
		}
		l.add(dl)
		l.addAttempt(dl, store.AttemptRecord{Response: body})
	}
}
