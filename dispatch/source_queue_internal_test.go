package dispatch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// sharedLogQueue is a webhook queue whose shared delivery log holds one
// delivery; it records the seqs Forget settles.
type sharedLogQueue struct {
	store.DeliveryQueue // the methods these tests do not call
	d                   store.Delivery
	forgot              []uint64
}

func (q *sharedLogQueue) Delivery(context.Context, string) (store.Delivery, error) { return q.d, nil }
func (q *sharedLogQueue) Forget(seq uint64) error {
	q.forgot = append(q.forgot, seq)
	return nil
}

// TestAdoptedDeliveryCounts: a delivery adopted from the shared log for a
// manual retry is counted here only when its retry waits in the queue
// (then a manual success settles that retry). One that ended elsewhere,
// or that another gateway holds (pending: released by a gateway that
// stopped, taken by another at once), moves no count here, and a manual
// success leaves the queue alone.
func TestAdoptedDeliveryCounts(t *testing.T) {
	for _, tc := range []struct {
		status      store.DeliveryStatus
		counted     bool     // a manual outcome here is counted
		wantForgets []uint64 // after a manual success
	}{
		{store.DeliveryRetrying, true, []uint64{42}},
		{store.DeliveryPending, false, nil},
		{store.DeliverySucceeded, false, nil},
		{store.DeliveryFailed, false, nil},
	} {
		ring := store.NewRing(16)
		d := New(gateway.NewPublisher(ring), Config{AllowPrivateTargets: true})
		e, err := d.newEndpoint(store.Webhook{ID: "wh_a", URL: "http://127.0.0.1:9/hook", Enabled: true, Secret: signature.NewSecret()})
		if err != nil {
			t.Fatal(err)
		}
		q := &sharedLogQueue{d: store.Delivery{ID: queuedID(42), WebhookID: "wh_a", EventSeq: 42, EventID: "evt_42", Status: tc.status, Attempts: 1}}
		src := &queueSource{e: e, q: q}
		e.src = src
		if err := src.adopt(context.Background(), queuedID(42)); err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		dl := e.log.find(queuedID(42))
		if dl == nil || !dl.away || dl.final == tc.counted {
			e.mu.Unlock()
			t.Fatalf("%s: adopted as %+v, want away and counted=%v", tc.status, dl, tc.counted)
		}
		dl.Status = store.DeliverySucceeded // as finish books a manual success
		e.finalLocked(dl, time.Now(), true)
		settle := src.settleLocked(dl, verdictAck, 0, false)
		succeeded, inSystem := e.succeeded, e.inSystem
		e.mu.Unlock()
		if settle != nil {
			if err := settle(); err != nil {
				t.Fatal(err)
			}
		}
		if want := map[bool]uint64{true: 1, false: 0}[tc.counted]; succeeded != want || inSystem != 0 {
			t.Errorf("%s: a manual success counted %d (in system %d), want %d", tc.status, succeeded, inSystem, want)
		}
		if !slices.Equal(q.forgot, tc.wantForgets) {
			t.Errorf("%s: a manual success settled %v in the queue, want %v", tc.status, q.forgot, tc.wantForgets)
		}
		e.cancel()
		_ = ring.Close()
	}
}
