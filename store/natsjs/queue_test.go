package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/nats-io/nats.go"
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
	first := store.AttemptRecord{Start: t0, StatusCode: 500, Error: "HTTP 500", Trigger: store.TriggerScheduled}
	second := store.AttemptRecord{Start: t0.Add(time.Minute), StatusCode: 204, Trigger: store.TriggerRetry}
	q.Record(store.Delivery{ID: "d1", EventSeq: 1, Status: store.DeliveryRetrying, Attempts: 1, CreatedAt: t0,
		History: []store.AttemptRecord{first}})
	q.Record(store.Delivery{ID: "d2", EventSeq: 2, Status: store.DeliveryPending, CreatedAt: t0.Add(time.Second)})
	q.Record(store.Delivery{ID: "d1", EventSeq: 1, Status: store.DeliverySucceeded, Attempts: 2, CreatedAt: t0.Add(time.Minute),
		History: []store.AttemptRecord{second}}) // another gateway's, which did not know it
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
	if got[1].History != nil {
		t.Fatalf("listed d1 with its history %+v: lists leave it out", got[1].History)
	}
	d, err := q.Delivery(ctx, "d1")
	if err != nil || d.Status != store.DeliverySucceeded || !d.CreatedAt.Equal(t0) || len(d.History) != 2 ||
		d.History[0].StatusCode != 500 || d.History[1].StatusCode != 204 {
		t.Fatalf("Delivery(d1) = %+v, %v; want succeeded, its first CreatedAt, both attempts in order", d, err)
	}
}

// States recorded together share messages (at most 64 states, 64 KiB in
// one; a larger state alone), the log reads them and the first form's
// messages (older gateways') alike, and listing answers for the
// DeliveryLogSize deliveries updated last though the log's messages hold
// more.
func TestQueueDeliveryLogPacked(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "PACKED", Prefix: "packed", MaxMsgs: 100, DeliveryLogSize: 30})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := l.OpenQueue(ctx, store.Webhook{ID: "wh_p"}, store.QueueConfig{MaxPending: 10, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0).UTC()
	state := func(i int, st store.DeliveryStatus) store.Delivery {
		return store.Delivery{ID: fmt.Sprintf("d%02d", i), EventSeq: uint64(i), Status: st, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
	}
	// The first form, as older gateways wrote it: one state as a JSON
	// object, several as a JSON array.
	old := func(ds ...store.Delivery) {
		t.Helper()
		var b []byte
		if len(ds) == 1 {
			b, _ = json.Marshal(ds[0])
		} else {
			b, _ = json.Marshal(ds)
		}
		if err := nc.Publish("packed.deliveries.wh_p", b); err != nil {
			t.Fatal(err)
		}
	}
	old(state(0, store.DeliveryPending))
	old(state(1, store.DeliveryPending), state(2, store.DeliveryPending))
	var many []store.Delivery
	for i := 1; i <= 40; i++ {
		many = append(many, state(i, store.DeliveryPending))
	}
	many[20].LastError = strings.Repeat("x", 64<<10) // over the bound alone: a message of its own
	many = append(many, state(0, store.DeliverySucceeded), state(40, store.DeliveryFailed))
	q.Record(many...)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []store.Delivery
	for deadline := time.Now().Add(5 * time.Second); len(got) == 0 || got[0].Status != store.DeliveryFailed; {
		if got, err = q.Deliveries(ctx, "", 100); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %+v", got)
		}
	}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	si, err := js.StreamInfo("PACKED_DELIVERIES")
	if err != nil {
		t.Fatal(err)
	}
	// 2 of the first form; 42 packed: d01…d20 (d21 does not fit), d21
	// alone, and the other 21.
	if si.State.Msgs != 5 {
		t.Fatalf("delivery log holds %d messages, want 5 (2 of the first form, 42 states packed in 3)", si.State.Msgs)
	}
	// The 30 updated last: d40 (failed), d00 (succeeded), d39 … d12;
	// newest first by creation.
	if len(got) != 30 || got[0].ID != "d40" || got[0].Status != store.DeliveryFailed || got[28].ID != "d12" ||
		got[29].ID != "d00" || got[29].Status != store.DeliverySucceeded {
		t.Fatalf("got %d deliveries, first %+v, last two %+v; want the 30 updated last (d40 failed … d12, then d00 succeeded)",
			len(got), got[0], got[28:])
	}
	if d, err := q.Delivery(ctx, "d11"); err == nil {
		t.Fatalf("Delivery(d11) = %+v, want not found: not among the 30 updated last", d)
	}
	if d, err := q.Delivery(ctx, "d00"); err != nil || d.Status != store.DeliverySucceeded || d.WebhookID != "wh_p" {
		t.Fatalf("Delivery(d00) = %+v, %v; want its latest state, succeeded", d, err)
	}
	if d, err := q.Delivery(ctx, "d21"); err != nil || len(d.LastError) != 64<<10 {
		t.Fatalf("Delivery(d21) = %d-byte error, %v; want the 64 KiB state", len(d.LastError), err)
	}
}

// A pull whose ctx ended takes nothing more, and what the server still
// hands its request is not lost: the next pull gets it, long before
// AckWait (a minute) would hand it out again, and without a delivery
// counted per hand-back.
func TestQueuePullEndedHandsBack(t *testing.T) {
	_, l, q, ctx := openQueue(t, "LATE", "wh_late")
	pctx, end := context.WithTimeout(ctx, 2*time.Second) // the server keeps the request open that long
	stale, err := q.Fetch(pctx, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	end()
	for range stale { // closed once its ctx ended
		t.Fatal("the ended pull brought a delivery")
	}
	m, ok := appendAndPullOne(ctx, t, l, q)
	if !ok {
		t.Fatal("the pull ended with nothing: the delivery is stuck with the ended pull until AckWait")
	}
	// The ended pull's request, asked for 50, stays open on the server
	// for up to 2 s: e1 comes to the open pull, or, when it went to the
	// ended one first, once more after that request has expired. Handed
	// back at once, it would go to the same request again and again, a
	// delivery counted each time.
	if m.ID != "e1" || m.Delivered > 2 {
		t.Fatalf("got %s, delivery %d; want e1, handed back at most once", m.ID, m.Delivered)
	}
	if err := m.Msg.Ack(); err != nil {
		t.Fatal(err)
	}
}

// A pull bounded in bytes brings what fits (the bound raised to one
// message of the largest the server takes, so the first always comes),
// and ends when the server says the next does not fit.
func TestQueuePullBoundedInBytes(t *testing.T) {
	nc, l, q, ctx := openQueue(t, "BYTES", "wh_bytes")
	big := []byte(`"` + strings.Repeat("x", int(nc.MaxPayload())*2/5) + `"`) // 3 of them pass max_payload, 2 do not
	for i := range 3 {
		if _, err := l.Append(ctx, []store.Event{{ID: fmt.Sprintf("e%d", i), Type: "a.b", Source: "t", Data: big}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	ch, err := q.Fetch(ctx, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range ch {
		got = append(got, m.ID)
		if err := m.Msg.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("a pull of 3 bounded to one max_payload brought %v, want the 2 that fit", got)
	}
	// The server ends the request (409) when the third does not fit: the
	// pull ends then, not when its ctx (10 s) does.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the pull ended after %v: the server's end of the request was missed", d)
	}
}

// openQueue opens a Log on stream (prefix its name in lower case) on a
// server of its own, and webhook id's queue on it (AckWait a minute).
func openQueue(t *testing.T, stream, id string) (*nats.Conn, *natsjs.Log, store.DeliveryQueue, context.Context) {
	t.Helper()
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: stream, Prefix: strings.ToLower(stream), MaxMsgs: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	q, err := l.OpenQueue(ctx, store.Webhook{ID: id}, store.QueueConfig{MaxPending: 10, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return nc, l, q, ctx
}

// A delivery kept in progress is not handed out again when its AckWait
// (here 1 s) would have passed: a second pull open meanwhile gets nothing.
// Once it is acked, keeping it in progress is a no-op.
func TestQueueInProgressHolds(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "HOLD", Prefix: "hold", MaxMsgs: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := l.OpenQueue(ctx, store.Webhook{ID: "wh_hold"}, store.QueueConfig{MaxPending: 10, AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := appendAndPullOne(ctx, t, l, q)
	if !ok {
		t.Fatal("no delivery")
	}
	wctx, end := context.WithTimeout(ctx, 2500*time.Millisecond) // 2.5 AckWaits
	defer end()
	second, err := q.Fetch(wctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	keep := time.NewTicker(300 * time.Millisecond)
	defer keep.Stop()
	for done := false; !done; {
		select {
		case again, ok := <-second:
			if ok {
				t.Fatalf("handed out again (delivery %d) while kept in progress", again.Delivered)
			}
			done = true
		case <-keep.C:
			if err := m.Msg.InProgress(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Msg.Ack(); err != nil {
		t.Fatal(err)
	}
	// A keep-alive noted before the attempt ended comes too late: no error.
	if err := m.Msg.InProgress(); err != nil {
		t.Fatalf("InProgress after Ack: %v, want a no-op", err)
	}
}

// appendAndPullOne appends event e1 (type a.b) to l and pulls one
// delivery from q; ok is false when the pull ended with nothing.
func appendAndPullOne(ctx context.Context, t *testing.T, l *natsjs.Log, q store.DeliveryQueue) (store.Queued, bool) {
	t.Helper()
	if _, err := l.Append(ctx, []store.Event{{ID: "e1", Type: "a.b", Source: "t", Data: []byte(`1`)}}, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := q.Fetch(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := <-ch
	return m, ok
}
