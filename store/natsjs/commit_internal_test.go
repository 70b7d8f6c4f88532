package natsjs

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// req is a queued Append of n distinct events.
func req(n int) *appendReq {
	r := &appendReq{ps: make([]pending, n), bytes: 100 * n, deadline: time.Now().Add(time.Minute),
		done: make(chan struct{}), sent: make(chan struct{})}
	for i := range n {
		r.uniq = append(r.uniq, i)
	}
	return r
}

func enqueueAll(t *testing.T, c *committer, rs ...*appendReq) {
	t.Helper()
	for _, r := range rs {
		if err := c.enqueue(context.Background(), r.deadline, r); err != nil {
			t.Fatal(err)
		}
	}
}

// sizes returns the event counts of a round's requests.
func sizes(round []*appendReq) []int {
	var out []int
	for _, r := range round {
		out = append(out, len(r.uniq))
	}
	return out
}

// While a round with an atomic batch is in flight, the next batches wait
// for it (one round after it carries them all) unless they fill a whole
// batch; single events go at once; done lets the held batches go, in
// queue order.
func TestTakeHoldsBatchesBehindOneInFlight(t *testing.T) {
	const maxBatch = 10
	stop := make(chan struct{})
	c := newCommitter(1000, 1<<20)

	enqueueAll(t, c, req(3), req(1))
	first := c.take(maxBatch, stop)
	if got := sizes(first); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("first round %v, want [3 1]: nothing in flight, everything goes", got)
	}

	enqueueAll(t, c, req(4), req(1), req(2), req(1))
	second := c.take(maxBatch, stop)
	if got := sizes(second); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("round beside a batch in flight %v, want the single events [1 1]", got)
	}
	c.done(second) // no batch in it: the batches stay held
	taken := make(chan []*appendReq, 1)
	go func() { taken <- c.take(maxBatch, stop) }()
	c.done(first)
	if got := sizes(await(t, taken)); !slices.Equal(got, []int{4, 2}) {
		t.Fatalf("round after the batch committed %v, want the held batches [4 2]", got)
	}

	// Batches that fill a whole one go beside a round in flight.
	enqueueAll(t, c, req(6), req(5))
	if got := sizes(c.take(maxBatch, stop)); !slices.Equal(got, []int{6, 5}) {
		t.Fatalf("round of a full batch's worth beside one in flight %v, want [6 5]", got)
	}
	if c.events != 0 || c.batchEvents != 0 || c.bytes != 0 || len(c.queue) != 0 {
		t.Fatalf("queue left %d requests, %d events, %d in batches, %d bytes", len(c.queue), c.events, c.batchEvents, c.bytes)
	}
	close(stop)
	if round := c.take(maxBatch, stop); round != nil {
		t.Fatalf("take after stop: %v", sizes(round))
	}
}

// await returns what ch brings, failing the test if nothing comes soon (a
// lost wake-up would otherwise hang it).
func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing came within 10s: a writer was not woken")
		panic("unreachable")
	}
}

// Held batches of large events do not keep a round's worth of bytes, or
// an Append waiting for room, behind the round in flight: they go at once
// (with few events, maxBatch alone would hold them).
func TestTakeReleasesHeldBatchesOnBytes(t *testing.T) {
	const maxBatch = 1000
	big := func(n int) *appendReq { r := req(n); r.bytes = n * 100 << 10; return r } // 100 KiB events
	t.Run("a round's bytes", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		c := newCommitter(20_000, 64<<20)
		enqueueAll(t, c, big(3))
		c.take(maxBatch, stop)                      // a batch round in flight
		enqueueAll(t, c, big(30), big(30), big(30)) // 9 MiB, 90 events
		taken := make(chan []*appendReq, 1)
		go func() { taken <- c.take(maxBatch, stop) }()
		if got := sizes(await(t, taken)); len(got) == 0 || got[0] != 30 {
			t.Fatalf("round beside one in flight %v, want the held batches (a round's bytes of them)", got)
		}
	})
	// An Append that gave up waiting no longer counts.
	t.Run("an Append that gave up", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		c := newCommitter(20_000, 4<<20)
		enqueueAll(t, c, big(3))
		first := c.take(maxBatch, stop) // a batch round in flight
		enqueueAll(t, c, big(30))       // 3 MiB: held
		single := big(1)
		single.bytes = 2 << 20 // no room for it
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.enqueue(ctx, single.deadline, single); !errors.Is(err, context.Canceled) {
			t.Fatalf("enqueue with an ended ctx and no room: %v", err)
		}
		enqueueAll(t, c, req(1))
		if got := sizes(c.take(maxBatch, stop)); !slices.Equal(got, []int{1}) {
			t.Fatalf("round after the Append gave up %v, want the single [1], the batch still held", got)
		}
		c.done(first)
	})
	// In a bubble, so that the other writer is surely waiting for work
	// before the Append comes: only the Append's signal can wake it.
	t.Run("an Append waiting for room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			c := newCommitter(20_000, 4<<20)
			enqueueAll(t, c, big(3))
			first := c.take(maxBatch, stop) // a batch round in flight
			enqueueAll(t, c, big(30))       // 3 MiB: below a round's bytes, and held
			select {
			case <-c.work: // its signal: the writer below must wait for another
			default:
			}
			taken := make(chan []*appendReq, 1)
			go func() { taken <- c.take(maxBatch, stop) }() // the other writer
			synctest.Wait()                                 // it waits for work
			single := big(1)
			single.bytes = 2 << 20 // no room for it beside the held batch
			queued := make(chan error, 1)
			go func() { queued <- c.enqueue(context.Background(), single.deadline, single) }()
			if got := sizes(await(t, taken)); !slices.Equal(got, []int{30}) {
				t.Fatalf("round while an Append waits for room %v, want the held batch [30]", got)
			}
			if err := await(t, queued); err != nil {
				t.Fatal(err)
			}
			c.done(first)
		})
	})
}
