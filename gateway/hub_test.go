package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// fakeSink records what the hub sends. When gate is set, every Send waits
// for a value on it first.
type fakeSink struct {
	gate   chan struct{}
	sent   chan []uint64 // seqs of each Send (meta lines as 0)
	closed chan string   // "why: detail"
}

func newFakeSink() *fakeSink {
	return &fakeSink{sent: make(chan []uint64, 10000), closed: make(chan string, 1)}
}

func (f *fakeSink) Send(ctx context.Context, meta []gateway.Meta, recs []store.Record) (int, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	var seqs []uint64
	for range meta {
		seqs = append(seqs, 0)
	}
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	f.sent <- seqs
	return 1, nil
}

func (f *fakeSink) Ping(context.Context) error { return nil }

func (f *fakeSink) Close(why gateway.CloseReason, detail string) {
	f.closed <- map[gateway.CloseReason]string{gateway.CloseShutdown: "shutdown", gateway.CloseSlow: "slow",
		gateway.CloseError: "error", gateway.CloseAbort: "abort", gateway.CloseExpired: "expired"}[why] + ": " + detail
}

// published numbers test events so that their idempotency keys differ.
var published atomic.Uint64

func publish(t *testing.T, ring *store.Ring, n int) {
	t.Helper()
	for ; n > 0; n -= min(n, 100) {
		batch := make([]store.Event, min(n, 100))
		for i := range batch {
			batch[i] = store.Event{ID: fmt.Sprint("x", published.Add(1)), Type: "a.b", Source: "/test", Data: json.RawMessage(`1`)}
		}
		if _, err := ring.Append(t.Context(), batch, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// startHub runs a hub over ring until the test ends.
func startHub(t *testing.T, ring *store.Ring, cfg gateway.HubConfig) *gateway.Hub {
	t.Helper()
	h := gateway.NewHub(ring, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// serve runs Serve in a goroutine the test waits for.
func serve(t *testing.T, h *gateway.Hub, sub gateway.Subscription, sink gateway.Sink) <-chan error {
	t.Helper()
	st, err := h.Open(sub)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- st.Serve(context.Background(), sink) })
	t.Cleanup(wg.Wait)
	return done
}

// Lag counts only what arrived since the client connected: replaying a
// whole buffer much larger than the queue bound is fine.
func TestHubReplayDoesNotCountAsLag(t *testing.T) {
	ring := store.NewRing(1000)
	publish(t, ring, 1000)
	h := startHub(t, ring, gateway.HubConfig{Queue: 10, MaxBatch: 7})
	sink := newFakeSink()
	done := serve(t, h, gateway.Subscription{Resume: true, After: 0}, sink)
	var got []uint64
	for len(got) < 1001 {
		got = append(got, <-sink.sent...)
	}
	for i, seq := range got[1:] {
		if seq != uint64(i+1) {
			t.Fatalf("send %d: seq %d", i, seq)
		}
	}
	if err := h.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil after a shutdown flush", err)
	}
	if c := <-sink.closed; c != "shutdown: gateway shutting down" {
		t.Fatalf("closed %q", c)
	}
	if _, err := h.Open(gateway.Subscription{}); !errors.Is(err, gateway.ErrHubClosed) {
		t.Fatalf("Open after Shutdown: %v", err)
	}
}

// Live lag past the queue bound cuts the client off, naming the seq it
// can resume after.
func TestHubCutsOffLiveLag(t *testing.T) {
	ring := store.NewRing(1000)
	publish(t, ring, 5)
	var drops []gateway.Drop
	h := startHub(t, ring, gateway.HubConfig{Queue: 10, MaxBatch: 4, OnDrop: func(d gateway.Drop) { drops = append(drops, d) }})
	sink := newFakeSink()
	sink.gate = make(chan struct{})
	done := serve(t, h, gateway.Subscription{Transport: "test"}, sink)
	sink.gate <- struct{}{} // hello
	<-sink.sent
	publish(t, ring, 3)
	sink.gate <- struct{}{} // 6..8: lag 3 is fine
	if got := <-sink.sent; len(got) != 3 || got[0] != 6 {
		t.Fatalf("sent %v, want 6..8", got)
	}
	publish(t, ring, 20)                                         // 9..28: the next message takes 4, leaving lag 16 > 10
	if err := <-done; !errors.Is(err, gateway.ErrSlowConsumer) { // no Send happens
		t.Fatalf("Serve = %v, want ErrSlowConsumer", err)
	}
	if c := <-sink.closed; c != "slow: slow consumer: last seq 8" {
		t.Fatalf("closed %q", c)
	}
	if len(drops) != 1 || drops[0].LastSeq != 8 || drops[0].Lag != 16 || drops[0].Transport != "test" {
		t.Fatalf("drops %+v", drops)
	}
}

// Shutdown's deadline force-closes a client stuck in a write; Run returns
// once it is gone.
func TestHubShutdownForcesStuckClients(t *testing.T) {
	ring := store.NewRing(100)
	h := startHub(t, ring, gateway.HubConfig{})
	sink := newFakeSink()
	sink.gate = make(chan struct{}) // never opened
	done := serve(t, h, gateway.Subscription{}, sink)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v, want context.Canceled", err)
	}
	if c := <-sink.closed; c != "abort: " {
		t.Fatalf("closed %q", c)
	}
}

// Go serves in a goroutine of the hub's: its stop ends the stream as a
// peer leaving does, done gets Serve's result, and the stream is released
// once (Shutdown then finds none left).
func TestHubGoStopEndsTheStream(t *testing.T) {
	h := startHub(t, store.NewRing(100), gateway.HubConfig{})
	st, err := h.Open(gateway.Subscription{})
	if err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink()
	done := make(chan error, 1)
	stop := st.Go(sink, func(err error) { done <- err })
	if got := <-sink.sent; len(got) != 1 { // hello
		t.Fatalf("sent %v, want the hello line", got)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("done(%v), want context.Canceled", err)
	}
	if c := <-sink.closed; c != "abort: " {
		t.Fatalf("closed %q", c)
	}
	stop()       // again, after the end: nothing happens
	st.Release() // the goroutine released already
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v: the stream was not released exactly once", err)
	}
}

// Shutdown's deadline force-closes a Go stream stuck in a write too.
func TestHubGoShutdownForcesStuckStream(t *testing.T) {
	h := startHub(t, store.NewRing(100), gateway.HubConfig{})
	st, err := h.Open(gateway.Subscription{})
	if err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink()
	sink.gate = make(chan struct{}) // never opened
	done := make(chan error, 1)
	st.Go(sink, func(err error) { done <- err })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("done(%v), want context.Canceled", err)
	}
	if c := <-sink.closed; c != "abort: " {
		t.Fatalf("closed %q", c)
	}
}

// growingLog is a ring whose Bounds, once armed, lets a few events be
// appended right after it answers: as when another gateway sharing the log
// goes on ingesting while this one shuts down.
type growingLog struct {
	*store.Ring
	armed atomic.Bool
	t     *testing.T
}

func (g *growingLog) Bounds() store.Bounds {
	b := g.Ring.Bounds()
	if g.armed.CompareAndSwap(true, false) {
		batch := make([]store.Event, 5)
		for i := range batch {
			batch[i] = store.Event{ID: fmt.Sprint("g", published.Add(1)), Type: "a.b", Source: "/other", Data: json.RawMessage(`1`)}
		}
		if _, err := g.Append(context.Background(), batch, nil); err != nil {
			g.t.Error(err) // the stream's goroutine: no Fatal here
		}
	}
	return b
}

// TestHubShutdownFlushEndsWhileTheLogGrows: a stream that sees the
// shutdown sends what is pending up to newest at that moment (3 and 4
// here, one per message) and closes with the shutdown close. Events
// appended after that moment (5 more, by another gateway sharing the log)
// are neither sent, nor counted as lag (Queue is 1: the stream would be cut
// off as slow), nor read again and again until the stream is forced.
func TestHubShutdownFlushEndsWhileTheLogGrows(t *testing.T) {
	ring := &growingLog{Ring: store.NewRing(1000), t: t}
	h := gateway.NewHub(ring, gateway.HubConfig{Linger: -1, MaxBatch: 1, Queue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := make(chan error, 1)
	go func() { run <- h.Run(ctx) }()
	publish(t, ring.Ring, 2)
	sink := newFakeSink()
	done := serve(t, h, gateway.Subscription{Resume: true}, sink)
	for _, want := range [][]uint64{{0, 1}, {2}} { // hello and 1, then 2
		if got := <-sink.sent; !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
	ring.armed.Store(true) // the next Bounds is the stream's flush point
	publish(t, ring.Ring, 2)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := h.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown = %v: the stream went on reading past its flush point", err)
	}
	if why := <-sink.closed; why != "shutdown: gateway shutting down" {
		t.Fatalf("closed with %q, want the shutdown close", why)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil after a flush", err)
	}
	var got []uint64
	for len(sink.sent) > 0 {
		got = append(got, <-sink.sent...)
	}
	if !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("flushed %v, want 3 and 4 (the log reached 9 after the flush point)", got)
	}
	if ring.armed.Load() || ring.Ring.Bounds().Newest != 9 {
		t.Fatal("the log did not grow after the stream's flush point")
	}
	cancel()
	<-run
}

// A subscription with Expires is closed when that time comes, idle or
// not, naming the last seq sent.
func TestHubSubscriptionExpires(t *testing.T) {
	ring := store.NewRing(100)
	publish(t, ring, 3)
	h := startHub(t, ring, gateway.HubConfig{})
	sink := newFakeSink()
	done := serve(t, h, gateway.Subscription{Resume: true, Expires: time.Now().Add(100 * time.Millisecond), ExpireReason: "token expired"}, sink)
	if got := <-sink.sent; !slices.Equal(got, []uint64{0, 1, 2, 3}) {
		t.Fatalf("first send = %v", got)
	}
	select {
	case got := <-sink.closed:
		if want := "expired: token expired; last seq 3"; got != want {
			t.Fatalf("close = %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived its Expires")
	}
	if err := <-done; !errors.Is(err, gateway.ErrExpired) {
		t.Fatalf("Serve = %v, want ErrExpired", err)
	}

	// Already past: closed before anything is sent.
	sink = newFakeSink()
	done = serve(t, h, gateway.Subscription{Resume: true, Expires: time.Now().Add(-time.Second)}, sink)
	if got := <-sink.closed; got != "expired: subscription expired; last seq 0" {
		t.Fatalf("close = %q", got)
	}
	if err := <-done; !errors.Is(err, gateway.ErrExpired) {
		t.Fatalf("Serve = %v, want ErrExpired", err)
	}
}

// spuriousLog wakes its readers only on tick, as a shared log does: one
// wake-up for all, whatever their cursors, so a tick with nothing
// appended wakes them for nothing.
type spuriousLog struct {
	*store.Ring
	mu   sync.Mutex
	wake chan struct{}
}

func (s *spuriousLog) Wait(after uint64) <-chan struct{} {
	select {
	case <-s.Ring.Wait(after):
		return store.Ready
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

func (s *spuriousLog) tick() {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// TestHubSpuriousWakeUpIsNotTheEnd: a stream woken with nothing new past
// its cursor, while the log is open, waits again and goes on; only a
// closed log ends it (1001).
func TestHubSpuriousWakeUpIsNotTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &spuriousLog{Ring: store.NewRing(100), wake: make(chan struct{})}
		h := gateway.NewHub(log, gateway.HubConfig{Linger: -1})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = h.Run(ctx) }()
		sink := newFakeSink()
		done := serve(t, h, gateway.Subscription{}, sink)
		<-sink.sent // hello
		for seq := uint64(1); seq <= 2; seq++ {
			publish(t, log.Ring, 1)
			log.tick()
			if got := <-sink.sent; len(got) != 1 || got[0] != seq {
				t.Fatalf("sent %v, want [%d]", got, seq)
			}
			synctest.Wait() // the stream waits again
			log.tick()      // for nothing
			synctest.Wait()
			select {
			case why := <-sink.closed:
				t.Fatalf("a wake-up for nothing ended the stream: %s", why)
			default:
			}
		}
		if err := log.Close(); err != nil {
			t.Fatal(err)
		}
		log.tick()
		if why := <-sink.closed; !strings.HasPrefix(why, "shutdown") {
			t.Fatalf("closed log: stream closed with %q, want shutdown", why)
		}
		<-done
	})
}
