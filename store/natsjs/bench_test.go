package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
				nc := connect(b, startServer(b, b.TempDir()))
				l := mustOpen(b, natsjs.Config{Conn: nc, Stream: "BENCH", Prefix: "bench", Memory: storage == "memory", MaxMsgs: 1 << 16})
				ctx := context.Background()
				batch := make([]store.Event, size)
				out := make([]store.Appended, 0, size)
				data := json.RawMessage(`{"n":1}`)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range batch {
						batch[j] = storetest.Ev("order.created", "evt_"+strconv.Itoa(i*size+j))
						batch[j].Data = data
					}
					if _, err := l.Append(ctx, batch, out[:0]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
