package client_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/client"
	"github.com/eventgate/eventgate/gateway"
)

// quick reconnects for tests.
var quick = client.SubscribeOptions{From: &client.Cursor{}, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}

func publishN(t testing.TB, c *client.Client, n int) {
	t.Helper()
	evs := make([]client.Event, n)
	for i := range evs {
		evs[i] = client.Event{Type: "order.created", Data: i}
	}
	if _, err := c.PublishBatch(testCtx(t), evs); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeResumesAfterNetworkFailure(t *testing.T) {
	g := startGateway(t, gwConfig{})
	proxy := startProxy(t, g.Addr)
	pub := newClient(t, g.URL)
	c := newClient(t, proxy.URL())
	ctx := testCtx(t)
	publishN(t, pub, 5)

	var seqs []uint64
	var kinds []client.Kind
	for sev, err := range c.Subscribe(ctx, quick) {
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, sev.Kind)
		switch sev.Kind {
		case client.KindEvent:
			seqs = append(seqs, sev.Event.Seq)
			if sev.Cursor != (client.Cursor{Epoch: g.Epoch, Seq: sev.Event.Seq}) {
				t.Fatalf("cursor %+v after seq %d", sev.Cursor, sev.Event.Seq)
			}
			if sev.Event.Seq == 3 {
				proxy.Cut() // events 4 and 5 may be on the wire: they must come once
			}
		case client.KindDisconnected:
			if sev.Err == nil {
				t.Fatal("disconnected without an error")
			}
			publishN(t, pub, 5) // 6..10, while the client is away
		default:
			t.Fatalf("unexpected %v: %+v", sev.Kind, sev)
		}
		if len(seqs) == 10 {
			break
		}
	}
	if want := seqRange(1, 10); !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}
	if !slices.Contains(kinds, client.KindDisconnected) {
		t.Fatalf("kinds %v: no disconnect seen", kinds)
	}
}

func TestSubscribeFiltered(t *testing.T) {
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	ctx := testCtx(t)
	for i, typ := range []string{"user.created", "order.created", "user.created", "order.created"} {
		if _, err := c.Publish(ctx, client.Event{Type: typ, Data: i}); err != nil {
			t.Fatal(err)
		}
	}
	o := quick
	o.From, o.Types = &client.Cursor{Epoch: g.Epoch, Seq: 2}, []string{"order.*"}
	for sev, err := range c.Subscribe(ctx, o) {
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := sev.Event.UnmarshalData(&n); err != nil || sev.Kind != client.KindEvent || sev.Event.Type != "order.created" || sev.Event.Seq != 4 || n != 3 {
			t.Fatalf("first item %+v (data %d, %v), want the event with seq 4", sev, n, err)
		}
		break
	}
}

func TestSubscribeLive(t *testing.T) {
	// Without From the stream starts with the first event stored after it
	// connected; a producer keeps publishing until the test has three.
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	produced := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range 3000 { // bounded: 30s
			select {
			case <-ctx.Done():
				produced <- nil
				return
			case <-tick.C:
			}
			if _, err := c.Publish(ctx, client.Event{Type: "tick.tock", Data: nil}); err != nil && ctx.Err() == nil {
				produced <- err
				return
			}
		}
		produced <- errors.New("the subscriber got nothing for 30s")
	}()
	var seqs []uint64
	o := quick
	o.From = nil
	for sev, err := range c.Subscribe(ctx, o) {
		if err != nil {
			t.Fatal(err)
		}
		if sev.Kind != client.KindEvent {
			t.Fatalf("unexpected %+v", sev)
		}
		seqs = append(seqs, sev.Event.Seq)
		if len(seqs) == 3 {
			break
		}
	}
	cancel()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if want := seqRange(seqs[0], seqs[0]+2); !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want consecutive", seqs)
	}
}

func TestSubscribeSlowConsumer(t *testing.T) {
	// A queue of 2 and reads of 2: a burst of 20 puts a connected client
	// 18 behind after its first read, and it is cut off (close 1008).
	g := startGateway(t, gwConfig{Hub: gateway.HubConfig{Queue: 2, MaxBatch: 2}})
	c := newClient(t, g.URL)
	ctx := testCtx(t)
	publishN(t, c, 1)

	var seqs []uint64
	var slow []client.StreamEvent
	for sev, err := range c.Subscribe(ctx, quick) {
		if err != nil {
			t.Fatal(err)
		}
		switch sev.Kind {
		case client.KindEvent:
			seqs = append(seqs, sev.Event.Seq)
			if sev.Event.Seq == 1 {
				publishN(t, c, 20) // the stream is open: a burst it cannot take in time
			}
		case client.KindSlowConsumer:
			slow = append(slow, sev)
		default:
			t.Fatalf("unexpected %v: %+v", sev.Kind, sev)
		}
		if len(seqs) == 21 {
			break
		}
	}
	if want := seqRange(1, 21); !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v (no gap, no duplicate)", seqs, want)
	}
	if len(slow) == 0 || websocket.CloseStatus(slow[0].Err) != websocket.StatusPolicyViolation || slow[0].LastSeq != 1 {
		t.Fatalf("slow-consumer events %+v, want one with LastSeq 1 and close 1008", slow)
	}
}

// TestSubscribeAcrossRestart stops the gateway in the middle of a
// subscription and starts a new one on the same address: a new ring, so a
// new epoch and seqs from 1 again. The client must report the 1001
// shutdown, reconnect, get a reset and go on with the new log's events,
// buffered (replayed) and live.
func TestSubscribeAcrossRestart(t *testing.T) {
	a := startGateway(t, gwConfig{})
	c := newClient(t, a.URL)
	ctx := testCtx(t)
	publishN(t, c, 3)

	stopped := make(chan struct{})
	var b *testGateway
	var got []client.StreamEvent
	for sev, err := range c.Subscribe(ctx, quick) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sev)
		switch {
		case sev.Kind == client.KindEvent && sev.Cursor.Epoch == a.Epoch && sev.Event.Seq == 3:
			// Stop from another goroutine: the shutdown flushes this
			// stream and waits for the client to read its close frame.
			go func() { defer close(stopped); a.Stop() }()
		case sev.Kind == client.KindDisconnected:
			<-stopped // the old gateway is gone, its address free
			b = startGateway(t, gwConfig{Addr: a.Addr})
			publishN(t, c, 2) // buffered when the client comes back
		case sev.Kind == client.KindEvent && b != nil && sev.Event.Seq == 2:
			publishN(t, c, 1) // live
		}
		if b != nil && sev.Kind == client.KindEvent && sev.Event.Seq == 3 {
			break
		}
	}
	if b == nil {
		t.Fatalf("no disconnect seen: %+v", got)
	}

	var trace []string
	for _, sev := range got {
		s := sev.Kind.String()
		if sev.Kind == client.KindEvent {
			s += "@" + sev.Cursor.Epoch[len(sev.Cursor.Epoch)-4:] + ":" + strconv.FormatUint(sev.Event.Seq, 10)
		}
		trace = append(trace, s)
	}
	ea, eb := a.Epoch[len(a.Epoch)-4:], b.Epoch[len(b.Epoch)-4:]
	want := []string{"event@" + ea + ":1", "event@" + ea + ":2", "event@" + ea + ":3", "disconnected", "reset",
		"event@" + eb + ":1", "event@" + eb + ":2", "event@" + eb + ":3"}
	if !slices.Equal(trace, want) {
		t.Fatalf("stream %v, want %v", trace, want)
	}
	if code := websocket.CloseStatus(got[3].Err); code != websocket.StatusGoingAway {
		t.Errorf("disconnect: %v, want close 1001", got[3].Err)
	}
	if r := got[4].Reset; r.Epoch != b.Epoch || r.Epoch == a.Epoch || r.Oldest != 1 || r.Newest != 2 {
		t.Errorf("reset %+v, want the new log: epoch %s, oldest 1, newest 2", r, b.Epoch)
	}
	if got[4].Cursor != (client.Cursor{Epoch: b.Epoch, Seq: 0}) {
		t.Errorf("cursor after the reset %+v, want before seq 1 of the new epoch", got[4].Cursor)
	}
}

func TestSubscribeEndsWithContext(t *testing.T) {
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	publishN(t, c, 2)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var errs []error
	n := 0
	for sev, err := range c.Subscribe(ctx, quick) {
		if err != nil {
			errs = append(errs, err)
			continue // the iterator must end on its own
		}
		if sev.Kind == client.KindEvent {
			n++
			cancel()
		}
	}
	if n == 0 || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("events %d, errors %v: want one context.Canceled last", n, errs)
	}
}

func TestSubscribeRefused(t *testing.T) {
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	n := 0
	for _, err := range c.Subscribe(testCtx(t), client.SubscribeOptions{Types: []string{"bad pattern"}}) {
		n++
		if e := apiError(t, err); e.StatusCode != 400 {
			t.Fatalf("bad types: %v, want 400", err)
		}
	}
	if n != 1 {
		t.Fatalf("%d items, want the one error", n)
	}

	// Nothing listens: MaxAttempts ends it.
	dead := startGateway(t, gwConfig{})
	dead.Stop()
	o := quick
	o.MaxAttempts = 3
	for _, err := range newClient(t, dead.URL).Subscribe(testCtx(t), o) {
		if err == nil {
			t.Fatal("an item from a stopped gateway")
		}
	}
}
