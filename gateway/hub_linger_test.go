package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// Light traffic goes out at once, one message per append, however long
// Linger is; a stream that gets more than a few events per Linger packs
// what arrives within Linger of its last message into the next one; and
// once traffic is light again it writes at once again.
func TestHubLingersOnlyWhenBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const linger = 10 * time.Millisecond
		ring := store.NewRing(10000)
		h := startHub(t, ring, gateway.HubConfig{Linger: linger})
		sink := newFakeSink()
		done := serve(t, h, gateway.Subscription{}, sink)
		endOnFailure(t, h)
		synctest.Wait()
		<-sink.sent // hello

		// Light: one event every 2 ms (500/s). Each is sent as soon as
		// it is appended: no fake time passes between append and send.
		for range 20 {
			time.Sleep(2 * time.Millisecond)
			publish(t, ring, 1)
			synctest.Wait()
			if n := len(sink.sent); n != 1 {
				t.Fatalf("light traffic: %d messages right after an append, want 1", n)
			}
			if got := <-sink.sent; len(got) != 1 {
				t.Fatalf("light traffic: sent %v, want one event", got)
			}
		}

		// Busy: 5 events every millisecond (5,000/s). Within two rate
		// windows (of at least Linger each) the stream is judged busy and
		// then waits out Linger between messages.
		var sizes []int
		var last time.Time
		busyFrom := time.Now().Add(2*linger + 5*time.Millisecond)
		for range 100 {
			time.Sleep(time.Millisecond)
			publish(t, ring, 5)
			synctest.Wait()
			for len(sink.sent) > 0 {
				got := <-sink.sent
				now := time.Now()
				if now.After(busyFrom) && now.Sub(last) < linger {
					t.Fatalf("busy: messages %v apart, want at least Linger (%v); sizes %v", now.Sub(last), linger, sizes)
				}
				sizes, last = append(sizes, len(got)), now
			}
		}
		if n := len(sizes); n > 35 {
			t.Fatalf("busy: %d messages for 100 ms of traffic (sizes %v), want about one per Linger after the first 25 ms", n, sizes)
		}
		if big := sizes[len(sizes)-1]; big < 40 {
			t.Fatalf("busy: the last message took %d events, want the ~50 of one Linger (sizes %v)", big, sizes)
		}

		// Light again: after a pause, every append goes out at once.
		time.Sleep(time.Second)
		synctest.Wait()
		for len(sink.sent) > 0 {
			<-sink.sent // what the last linger held
		}
		for range 5 {
			time.Sleep(20 * time.Millisecond)
			publish(t, ring, 1)
			synctest.Wait()
			if n := len(sink.sent); n != 1 {
				t.Fatalf("light again: %d messages right after an append, want 1", n)
			}
			<-sink.sent
		}
		if err := h.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Serve = %v", err)
		}
	})
}

// endOnFailure shuts h down before serve's cleanup waits for its streams
// (cleanups run last first): in a synctest bubble a stream left running
// after a failure would otherwise ping forever in fake time.
func endOnFailure(t *testing.T, h *gateway.Hub) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
}

// stuckSink lets the hello and the first pass Sends of events through
// and blocks every later Send until its context ends, telling entered
// when it starts blocking.
type stuckSink struct {
	entered  chan struct{}
	deadline chan bool // whether the blocked Send's ctx had a deadline
	closed   chan string
	pass     int
}

func (k *stuckSink) Send(ctx context.Context, meta []gateway.Meta, recs []store.Record) (int, error) {
	if len(recs) == 0 {
		return 1, nil // hello
	}
	if k.pass > 0 {
		k.pass--
		return 1, nil
	}
	_, ok := ctx.Deadline()
	k.deadline <- ok
	k.entered <- struct{}{}
	<-ctx.Done()
	return 0, ctx.Err()
}
func (k *stuckSink) Ping(context.Context) error { return nil }
func (k *stuckSink) Close(why gateway.CloseReason, detail string) {
	k.closed <- map[gateway.CloseReason]string{gateway.CloseSlow: "slow", gateway.CloseAbort: "abort"}[why] + ": " + detail
}

// A Send that passes WriteTimeout ends the stream: as a broken connection
// when the client is not far behind, as a slow consumer when what arrived
// meanwhile passes the queue bound. The Send's context carries the
// deadline and reports it as context.DeadlineExceeded.
func TestHubWriteTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		more    int // events published while the Send is blocked
		wantErr error
		close   string
	}{
		{"broken", 0, context.DeadlineExceeded, "abort: "},
		{"slow", 20, gateway.ErrSlowConsumer, "slow: slow consumer: last seq 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ring := store.NewRing(1000)
				h := startHub(t, ring, gateway.HubConfig{WriteTimeout: time.Second, Queue: 10})
				sink := &stuckSink{entered: make(chan struct{}, 1), deadline: make(chan bool, 1), closed: make(chan string, 1)}
				done := serve(t, h, gateway.Subscription{}, sink)
				endOnFailure(t, h)
				synctest.Wait() // hello sent, waiting
				publish(t, ring, 1)
				<-sink.entered
				if !<-sink.deadline {
					t.Fatal("the Send's context has no deadline")
				}
				publish(t, ring, tc.more)
				start := time.Now()
				err := <-done
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Serve = %v, want %v", err, tc.wantErr)
				}
				if d := time.Since(start); d != time.Second {
					t.Fatalf("the stream ended %v after the write began, want WriteTimeout (1s)", d)
				}
				if c := <-sink.closed; !strings.HasPrefix(c, tc.close) {
					t.Fatalf("closed %q, want %q", c, tc.close)
				}
			})
		})
	}
}

// The deadline is each Send's own: a Send that blocks after others went
// through is ended exactly WriteTimeout after its own start, not after
// an earlier Send's.
func TestHubWriteTimeoutAfterEarlierSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ring := store.NewRing(1000)
		h := startHub(t, ring, gateway.HubConfig{WriteTimeout: time.Second, Linger: -1})
		sink := &stuckSink{entered: make(chan struct{}, 1), deadline: make(chan bool, 1), closed: make(chan string, 1), pass: 3}
		done := serve(t, h, gateway.Subscription{}, sink)
		endOnFailure(t, h)
		synctest.Wait() // hello sent, waiting
		for range 3 {   // three Sends pass, 400 ms apart
			publish(t, ring, 1)
			synctest.Wait()
			time.Sleep(400 * time.Millisecond)
		}
		publish(t, ring, 1) // at 1.2 s: this Send blocks
		<-sink.entered
		<-sink.deadline
		start := time.Now()
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Serve = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("the blocked Send ended %v after it began, want WriteTimeout (1s)", d)
		}
		if c := <-sink.closed; !strings.HasPrefix(c, "abort: ") {
			t.Fatalf("closed %q, want abort", c)
		}
	})
}

// Many Sends share one write deadline: each is bounded by WriteTimeout
// from its own start, however many came before.
func TestHubWriteDeadlineIsPerSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ring := store.NewRing(1000)
		h := startHub(t, ring, gateway.HubConfig{WriteTimeout: time.Second, Linger: -1})
		sink := &deadlineSink{deadlines: make(chan time.Duration, 100)}
		done := serve(t, h, gateway.Subscription{}, sink)
		endOnFailure(t, h)
		for i := range 10 {
			time.Sleep(700 * time.Millisecond) // 10 sends span 7 WriteTimeouts
			publish(t, ring, 1)
			if d := <-sink.deadlines; d != time.Second {
				t.Fatalf("send %d: deadline %v ahead, want WriteTimeout", i, d)
			}
		}
		if err := h.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Serve = %v", err)
		}
	})
}

// deadlineSink reports how far ahead each Send's deadline is, failing a
// Send whose context has already ended.
type deadlineSink struct{ deadlines chan time.Duration }

func (k *deadlineSink) Send(ctx context.Context, _ []gateway.Meta, recs []store.Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(recs) > 0 {
		d, _ := ctx.Deadline()
		k.deadlines <- time.Until(d)
	}
	return 1, nil
}
func (k *deadlineSink) Ping(context.Context) error        { return nil }
func (k *deadlineSink) Close(gateway.CloseReason, string) {}
