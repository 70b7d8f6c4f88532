package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRing(tb testing.TB, capacity int) store.Log {
	r := store.NewRing(capacity)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRingConformance(t *testing.T) { storetest.Run(t, newRing) }

func TestRingEpochIsNewEachTime(t *testing.T) {
	a, b := store.NewRing(1).Bounds().Epoch, store.NewRing(1).Bounds().Epoch
	if a == "" || a == b {
		t.Fatalf("epochs %q and %q: want distinct and non-empty", a, b)
	}
}

func TestRingRefusesBatchOverCapacity(t *testing.T) {
	r := newRing(t, 2)
	_, err := r.Append(context.Background(), []store.Event{storetest.Ev("a.a", "1"), storetest.Ev("a.a", "2"), storetest.Ev("a.a", "3")}, nil)
	if !errors.Is(err, store.ErrBatchTooLarge) || r.Bounds().Newest != 0 {
		t.Fatalf("err = %v, newest = %d; want ErrBatchTooLarge and nothing stored", err, r.Bounds().Newest)
	}
}

// prepared returns n encoded events with distinct idempotency keys.
func prepared(tb testing.TB, n int, data json.RawMessage) []store.Event {
	tb.Helper()
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = storetest.Ev("order.created", fmt.Sprintf("evt_%012d", i))
		evs[i].Data = data
		if err := evs[i].Encode(); err != nil {
			tb.Fatal(err)
		}
	}
	return evs
}

// BenchmarkAppend measures the append path itself: events are encoded
// beforehand (as ingest does outside the lock), one event per Append. The
// pool is twice the capacity, so every reuse lands after its previous copy
// was overwritten and forgotten by the idempotency index.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			const capacity = 1 << 16
			r := store.NewRing(capacity)
			defer r.Close()
			pool := prepared(b, 2*capacity/size*size, json.RawMessage(`{"n":1}`))
			out := make([]store.Appended, 0, size)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := (i * size) % len(pool)
				if _, err := r.Append(ctx, pool[start:start+size], out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestRingMemory stores 1,000,000 events of ~200 bytes of data and reports
// the live heap; it fails above 600 MiB.
func TestRingMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocates ~600 MB; run without -race and -short")
	}
	const n = 1_000_000
	data := json.RawMessage(`{"order":981,"customer":"c_2Jx8hHk2mN","items":[{"sku":"sku-123","qty":2,"price":1999},{"sku":"sku-456","qty":1,"price":4999}],"currency":"EUR","note":"leave at the door, ring twice please"}`)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	r := store.NewRing(n)
	ctx := context.Background()
	out := make([]store.Appended, 0, 1000)
	for i := 0; i < n; i += 1000 {
		evs := make([]store.Event, 1000)
		for j := range evs {
			evs[j] = storetest.Ev("order.created", fmt.Sprintf("evt_%020d", i+j))
			evs[j].Data = data
		}
		if _, err := r.Append(ctx, evs, out[:0]); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	mib := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	t.Logf("1,000,000 events with %d-byte data: %.0f MiB live heap (%.0f bytes/event)", len(data), mib, mib*(1<<20)/n)
	if mib > 600 {
		t.Fatalf("heap %.0f MiB, want under 600", mib)
	}
	runtime.KeepAlive(r)
}
