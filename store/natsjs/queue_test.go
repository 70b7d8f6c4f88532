package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
)

func TestQueueDeliveryLog(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := logsOn(nc, false)(t, 100).(*natsjs.Log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := l.OpenQueue(ctx, store.Webhook{ID: "wh_1", Types: []string{"a.*"}}, store.QueueConfig{MaxPending: 10, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0).UTC()
	q.Record(store.Delivery{ID: "d1", EventSeq: 1, Status: store.DeliveryRetrying, Attempts: 1, CreatedAt: t0})
	q.Record(store.Delivery{ID: "d2", EventSeq: 2, Status: store.DeliveryPending, CreatedAt: t0.Add(time.Second)})
	q.Record(store.Delivery{ID: "d1", EventSeq: 1, Status: store.DeliverySucceeded, Attempts: 2, CreatedAt: t0.Add(time.Minute)})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []store.Delivery
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 2 || got[1].Status != store.DeliverySucceeded {
		if got, err = q.Deliveries(ctx, "", 10); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v", got)
		}
	}
	if got[0].ID != "d2" || got[1].ID != "d1" || !got[1].CreatedAt.Equal(t0) || got[1].Attempts != 2 {
		t.Fatalf("deliveries = %+v, want d2, then d1 succeeded with its first CreatedAt", got)
	}
	if d, err := q.Delivery(ctx, "d1"); err != nil || d.Status != store.DeliverySucceeded {
		t.Fatalf("Delivery(d1) = %+v, %v", d, err)
	}
}
