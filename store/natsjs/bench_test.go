package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/storetest"
)

// BenchmarkAppendNATS measures Append on an embedded server (in-process
// connection), one batch per Append, beside store's BenchmarkAppend for
// the ring. Unlike the ring's, each event is new (a repeated id would be a
// duplicate for the whole window), so the time includes encoding it
// (about a microsecond).
func BenchmarkAppendNATS(b *testing.B) {
	for _, storage := range []string{"memory", "file"} {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("storage=%s/batch=%d", storage, size), func(b *testing.B) {
				benchAppend(b, storage == "memory", 1, size)
			})
		}
	}
}

// BenchmarkAppendConcurrent measures Append throughput on an embedded
// server with file storage in a temp dir, with callers concurrent
// Appends (as concurrent HTTP requests make them): b.N Appends in all,
// each of batch events. events/s is the figure to compare.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, size := range []int{1, 100} {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("batch=%d/callers=%d", size, callers), func(b *testing.B) {
				benchAppend(b, false, callers, size)
			})
		}
	}
}

// benchAppend runs b.N Appends of size new events each from callers
// goroutines on a new server and stream.
func benchAppend(b *testing.B, memory bool, callers, size int) {
	nc := connect(b, startServer(b, b.TempDir()))
	l := mustOpen(b, natsjs.Config{Conn: nc, Stream: "BENCH", Prefix: "bench", Memory: memory, MaxMsgs: 1 << 20})
	ctx := context.Background()
	data := json.RawMessage(`{"n":1}`)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]store.Event, size)
			out := make([]store.Appended, 0, size)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				for j := range batch {
					batch[j] = storetest.Ev("order.created", "evt_"+strconv.Itoa(i*size+j))
					batch[j].Data = data
				}
				if _, err := l.Append(ctx, batch, out[:0]); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}
