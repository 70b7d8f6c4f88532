package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkDeliveryLogListing measures listing a busy webhook's
// deliveries: its delivery log full (DeliveryLogSize messages, 1000),
// every message packed, in the form this version writes (64 compact
// states per message) and in the first form as it was written (16
// states per message, a JSON array of store.Delivery). A listing reads
// every retained message; bytes/op is what it reads.
func BenchmarkDeliveryLogListing(b *testing.B) {
	for _, form := range []string{"compact-64", "first-16"} {
		b.Run(form, func(b *testing.B) {
			nc := connect(b, startServer(b, b.TempDir()))
			l := mustOpen(b, natsjs.Config{Conn: nc, Stream: "LIST", Prefix: "list", MaxMsgs: 100})
			ctx := context.Background()
			q, err := l.OpenQueue(ctx, store.Webhook{ID: "wh_list"}, store.QueueConfig{MaxPending: 10, AckWait: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			state := func(i int) store.Delivery {
				at := t0.Add(time.Duration(i) * time.Millisecond)
				return store.Delivery{ID: "dlv_q" + strconv.Itoa(i), WebhookID: "wh_list", EventSeq: uint64(i),
					EventID: "evt_01JEXAMPLE" + strconv.Itoa(100000000+i), Status: store.DeliverySucceeded, Attempts: 1,
					LastStatusCode: 204, LastAttemptAt: at, Duration: 312 * time.Microsecond, CreatedAt: at,
					History: []store.AttemptRecord{{Start: at, Duration: 312 * time.Microsecond, StatusCode: 204, Trigger: store.TriggerScheduled}}}
			}
			per, bytes := 64, 0
			if form == "first-16" {
				per = 16
			}
			for m := range 1000 {
				batch := make([]store.Delivery, per)
				for i := range batch {
					batch[i] = state(m*per + i)
				}
				if form == "first-16" {
					body, _ := json.Marshal(batch)
					bytes += len(body)
					if err := nc.Publish("list.deliveries.wh_list", body); err != nil {
						b.Fatal(err)
					}
					continue
				}
				q.Record(batch...)
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
			js, err := nc.JetStream()
			if err != nil {
				b.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				si, err := js.StreamInfo("LIST_DELIVERIES")
				if err == nil && si.State.Msgs == 1000 {
					bytes = int(si.State.Bytes)
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("the delivery log holds %v messages, want 1000 (%v)", si, err)
				}
				runtime.Gosched()
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got, err := q.Deliveries(ctx, "", 100)
				if err != nil || len(got) != 100 {
					b.Fatalf("listed %d, %v", len(got), err)
				}
			}
		})
	}
}
