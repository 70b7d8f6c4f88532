package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/eventgate/eventgate/store/storetest"
)

// TestAppendUnderLoad drives many concurrent Appends, single events and
// batches of 100, against an embedded server with file storage: every
// Append succeeds (an ordinary JetStream limit is never an error), each
// batch gets consecutive seqs, and the seqs of all of them are exactly
// 1…total, none twice. With inflight=1 the server refuses every atomic
// batch but one open at a time, so Appends run into the limit and must
// wait and try again.
func TestAppendUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		callers, appends, size, inflight int
	}{
		{64, 20, 1, 0},
		{256, 5, 1, 0},
		{64, 2, 100, 0},
		{256, 1, 100, 0},
		{64, 2, 100, 1},
	} {
		t.Run(fmt.Sprintf("callers=%d/batch=%d/inflight=%d", tc.callers, tc.size, tc.inflight), func(t *testing.T) {
			srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir(), MaxBatchInflight: tc.inflight})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			nc := connect(t, srv)
			l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "LOAD", Prefix: "load", Timeout: time.Minute})
			ctx := t.Context()
			seqs := make([][]store.Appended, tc.callers*tc.appends)
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers)
			for c := range tc.callers {
				wg.Go(func() {
					for a := range tc.appends {
						batch := make([]store.Event, tc.size)
						for i := range batch {
							batch[i] = storetest.Ev("order.created", fmt.Sprintf("c%d-a%d-e%d", c, a, i))
						}
						out, err := l.Append(ctx, batch, nil)
						if err != nil {
							errs <- fmt.Errorf("caller %d append %d: %w", c, a, err)
							return
						}
						seqs[c*tc.appends+a] = out
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			checkSeqs(t, seqs, tc.size)
			if got, want := l.Bounds().Newest, uint64(len(seqs)*tc.size); got != want {
				t.Errorf("newest = %d, want %d", got, want)
			}
		})
	}
}

// checkSeqs checks that each Append's events are new with consecutive
// seqs, and that all seqs together are 1…n, each once.
func checkSeqs(t *testing.T, seqs [][]store.Appended, size int) {
	t.Helper()
	var all []uint64
	for _, out := range seqs {
		if len(out) != size {
			t.Fatalf("an Append answered %d events, want %d", len(out), size)
		}
		for i, a := range out {
			if a.Duplicate {
				t.Fatalf("%s reported a duplicate", a.ID)
			}
			if i > 0 && a.Seq != out[i-1].Seq+1 {
				t.Fatalf("batch seqs not consecutive: %d after %d", a.Seq, out[i-1].Seq)
			}
			all = append(all, a.Seq)
		}
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("seq %d at position %d: a gap or a repeat", s, i)
		}
	}
}

// TestAppendRepeatsInSharedBatch: while many Appends are coalesced into
// shared atomic batches, some repeat ids stored before. A repeat makes the
// server refuse the whole shared batch; no other Append may fail for it,
// the repeats get their originals' seqs, and each Append's new events
// still get consecutive seqs.
func TestAppendRepeatsInSharedBatch(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "REPEAT", Prefix: "repeat", Timeout: time.Minute})
	ctx := t.Context()
	const callers, size = 64, 20
	first := make([][]store.Appended, callers)
	mk := func(c, from, to int) []store.Event {
		var b []store.Event
		for i := from; i < to; i++ {
			b = append(b, storetest.Ev("order.created", fmt.Sprintf("c%d-e%d", c, i)))
		}
		return b
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*callers)
	for c := range callers {
		wg.Go(func() {
			out, err := l.Append(ctx, mk(c, 0, size), nil)
			if err != nil {
				errs <- err
				return
			}
			first[c] = out
		})
	}
	wg.Wait()
	for c := range callers {
		wg.Go(func() {
			// Odd callers repeat half of their first batch; even callers
			// send new events only, sharing batches with the odd ones.
			from := size
			if c%2 == 1 {
				from = size / 2
			}
			out, err := l.Append(ctx, mk(c, from, size+size/2), nil)
			if err != nil {
				errs <- fmt.Errorf("caller %d: %w", c, err)
				return
			}
			var prev uint64
			for i, a := range out {
				if n := from + i; n < size {
					if !a.Duplicate || a.Seq != first[c][n].Seq {
						errs <- fmt.Errorf("caller %d: repeat %s = %+v, want duplicate of seq %d", c, a.ID, a, first[c][n].Seq)
					}
					continue
				}
				if a.Duplicate || (prev != 0 && a.Seq != prev+1) {
					errs <- fmt.Errorf("caller %d: new %s = %+v after seq %d", c, a.ID, a, prev)
				}
				prev = a.Seq
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(callers*size + callers/2*(size/2) + callers/2*(size/2))
	if got := l.Bounds().Newest; got != want {
		t.Errorf("newest = %d, want %d", got, want)
	}
}

// TestAppendAfterClose: Close ends the writers; a later Append fails with
// ErrClosed and nothing is left running (goleak checks).
func TestAppendAfterClose(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "CLOSE", Prefix: "close", Memory: true})
	ctx := context.Background()
	if _, err := l.Append(ctx, []store.Event{storetest.Ev("a.b", "1")}, nil); err != nil {
		t.Fatal(err)
	}
	lim := l.Limits()
	if lim.Storage != "memory" || lim.MaxMsgs != natsjs.DefaultMaxMsgs || lim.Replicas != 1 || lim.MaxBatch != natsjs.DefaultMaxBatch {
		t.Errorf("limits = %+v", lim)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, []store.Event{storetest.Ev("a.b", "2")}, nil); err == nil {
		t.Fatal("append after close succeeded")
	}
}

// TestCloseDuringAppends: Appends queued or in flight when Close runs end
// (stored, or with ErrClosed), and Close returns after the writers.
func TestCloseDuringAppends(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	// Single events on memory storage: an atomic batch left open when the
	// server shuts down keeps its staging store (files on file storage)
	// and nats-server's access-time goroutine alive past Shutdown, which
	// the test's TempDir cleanup and goleak would see.
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "CLOSING", Prefix: "closing", MaxPending: 50, Memory: true})
	ctx := context.Background()
	started := make(chan struct{}, 64)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 64 {
		wg.Go(func() {
			for a := 0; ; a++ {
				batch := []store.Event{storetest.Ev("a.b", fmt.Sprintf("c%d-%d", c, a))}
				_, err := l.Append(ctx, batch, nil)
				if a == 0 {
					started <- struct{}{}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 64 {
		<-started
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("append during close: %v", err)
		}
	}
}
