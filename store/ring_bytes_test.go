package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/storetest"
)

// sized returns an event whose data is a JSON string of n bytes.
func sized(id string, n int) store.Event {
	e := storetest.Ev("blob.stored", id)
	e.Data = json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
	return e
}

func newBytesRing(tb testing.TB, capacity int, maxBytes int64) *store.Ring {
	tb.Helper()
	r := store.NewRingConfig(store.RingConfig{Capacity: capacity, MaxBytes: maxBytes})
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// TestRingDropsOldestPastMaxBytes: the byte budget, not only the count,
// pushes the oldest events out; readers behind them see a gap and the held
// bytes never pass the budget.
func TestRingDropsOldestPastMaxBytes(t *testing.T) {
	const budget = 64 << 10
	r := newBytesRing(t, 1000, budget)
	ctx := context.Background()
	for i := range 20 {
		if _, err := r.Append(ctx, []store.Event{sized(fmt.Sprint(i), 10<<10)}, nil); err != nil {
			t.Fatal(err)
		}
		if h := r.HeldBytes(); h > budget {
			t.Fatalf("after %d appends: %d bytes held, budget %d", i+1, h, budget)
		}
	}
	b := r.Bounds()
	if b.Newest != 20 || b.Oldest <= 20-6 || b.Oldest > 20-4 {
		t.Fatalf("bounds %+v: want newest 20 and the 5 or 6 newest 10 KiB events kept within 64 KiB", b)
	}
	p, err := r.Read(ctx, 0, 100, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap == nil || p.Gap.From != 1 || p.Gap.To != b.Oldest-1 || len(p.Records) != int(b.Newest-b.Oldest+1) {
		t.Fatalf("read from 0: gap %+v, %d records; want gap 1..%d and the rest", p.Gap, len(p.Records), b.Oldest-1)
	}
	if _, err := r.Get(ctx, b.Oldest-1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a dropped seq = %v, want ErrNotFound", err)
	}
	// A dropped event's idempotency key is forgotten, as with overwrites.
	out, err := r.Append(ctx, []store.Event{sized("0", 10<<10)}, nil)
	if err != nil || out[0].Duplicate {
		t.Fatalf("re-append of dropped id: %+v, %v; want stored anew", out, err)
	}
}

// TestRingRefusesEventOverMaxBytes: one event larger than the whole budget
// is refused with ErrEventTooLarge and the ring keeps what it held.
func TestRingRefusesEventOverMaxBytes(t *testing.T) {
	r := newBytesRing(t, 1000, 32<<10)
	ctx := context.Background()
	if _, err := r.Append(ctx, []store.Event{sized("a", 1<<10), sized("b", 1<<10)}, nil); err != nil {
		t.Fatal(err)
	}
	held := r.HeldBytes()
	_, err := r.Append(ctx, []store.Event{sized("huge", 40<<10)}, nil)
	if !errors.Is(err, store.ErrEventTooLarge) {
		t.Fatalf("append of an event over the budget = %v, want ErrEventTooLarge", err)
	}
	_, err = r.Append(ctx, []store.Event{sized("c", 20<<10), sized("d", 20<<10)}, nil)
	if !errors.Is(err, store.ErrBatchTooLarge) {
		t.Fatalf("append of a batch over the budget = %v, want ErrBatchTooLarge", err)
	}
	if b := r.Bounds(); b.Oldest != 1 || b.Newest != 2 || r.HeldBytes() != held {
		t.Fatalf("after refusals: bounds %+v, %d bytes held; want 1..2 and %d bytes untouched", b, r.HeldBytes(), held)
	}
}

// TestRingBytes: Bytes adds up what records in a seq range count for, only
// those still stored.
func TestRingBytes(t *testing.T) {
	r := newBytesRing(t, 4, 1<<20)
	ctx := context.Background()
	for i := range 6 {
		if _, err := r.Append(ctx, []store.Event{sized(fmt.Sprint(i), 1000)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// seqs 3..6 are stored, each counting for the same size.
	one := r.HeldBytes() / 4
	for _, c := range []struct {
		after, through uint64
		want           int64
	}{{0, 6, 4 * one}, {2, 6, 4 * one}, {3, 6, 3 * one}, {5, 6, one}, {6, 6, 0}, {3, 4, one}, {0, 100, 4 * one}, {6, 2, 0}} {
		if got := r.Bytes(c.after, c.through); got != c.want {
			t.Errorf("Bytes(%d, %d) = %d, want %d", c.after, c.through, got, c.want)
		}
	}
	if one <= 1000 {
		t.Errorf("a 1000-byte-data record counts for %d bytes; want its JSON and overhead", one)
	}
}

// TestRingReadStopsWhenCtxEnds: a scan over a full ring returns early, with
// ctx's error, when its context has ended.
func TestRingReadStopsWhenCtxEnds(t *testing.T) {
	r := newBytesRing(t, 10000, 0)
	ctx := context.Background()
	evs := make([]store.Event, 1000)
	for j := range 10 {
		for i := range evs {
			evs[i] = storetest.Ev("a.b", fmt.Sprintf("%d-%d", j, i))
		}
		if _, err := r.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	f, err := store.ParseFilter([]string{"no.match"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	p, err := r.Read(cctx, 0, 100, f, nil)
	if !errors.Is(err, context.Canceled) || p.Next >= 10000 {
		t.Fatalf("Read with an ended ctx: next %d, err %v; want an early return with context.Canceled", p.Next, err)
	}
	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	if _, err := r.Read(dctx, 0, 100, f, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read past its deadline: err %v, want DeadlineExceeded", err)
	}
}

// BenchmarkAppendDuringWideReplay measures how long an Append waits while
// replays with the most patterns a filter may have (store.MaxFilterPatterns)
// of 63 segments scan a full ring of 63-segment types that they never
// match: the work Read does per lock hold bounds that wait. It reports the
// worst and the 99th-percentile append latency.
func BenchmarkAppendDuringWideReplay(b *testing.B) {
	const capacity = 100_000
	seg := strings.Repeat("a.", 62)
	typ := seg + "zzz" // 127 bytes, 63 segments
	r := newBytesRing(b, capacity, 0)
	ctx := context.Background()
	evs := make([]store.Event, 1000)
	for j := range capacity / len(evs) {
		for i := range evs {
			evs[i] = storetest.Ev(typ, fmt.Sprintf("%d-%d", j, i))
		}
		if _, err := r.Append(ctx, evs, nil); err != nil {
			b.Fatal(err)
		}
	}
	pats := make([]string, store.MaxFilterPatterns)
	for i := range pats {
		pats[i] = seg + fmt.Sprintf("b%02d", i) // differs in the last segment only
	}
	f, err := store.ParseFilter(pats)
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rctx.Err() == nil {
			_, _ = r.Read(rctx, 0, 100, f, nil)
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	ev := storetest.Ev(typ, "")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := ev
		e.ID = fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := r.Append(ctx, []store.Event{e}, nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	stop()
	<-done
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
