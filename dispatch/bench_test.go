package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
)

// countingReceiver answers 204 and closes done when want requests arrived.
type countingReceiver struct {
	n    atomic.Int64
	want atomic.Int64
	done chan struct{}
	once sync.Once
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusNoContent)
	if c.n.Add(1) == c.want.Load() {
		c.once.Do(func() { close(c.done) })
	}
}

// benchLog opens the log a benchmark runs on: "ring", or "nats", an
// embedded JetStream server with file storage in a temporary directory
// (webhooks, their queues and delivery logs on it too).
func benchLog(tb testing.TB, kind string, cfg *dispatch.Config) store.Log {
	tb.Helper()
	if kind == "ring" {
		return store.NewRing(1 << 20)
	}
	srv, err := natsembed.Start(natsembed.Config{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := natsjs.Open(ctx, natsjs.Config{Conn: nc, MaxMsgs: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	hooks, err := l.OpenWebhooks(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Webhooks = hooks
	return l
}

// benchGateway runs a dispatcher over a log of kind (see benchLog) with
// one webhook per receiver.
func benchGateway(tb testing.TB, kind string, receivers int, cfg dispatch.Config) (*gateway.Publisher, []*countingReceiver, func()) {
	tb.Helper()
	ring := benchLog(tb, kind, &cfg)
	pub := gateway.NewPublisher(ring)
	cfg.AllowPrivateTargets = true
	d := dispatch.New(pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var rcs []*countingReceiver
	var srvs []*httptest.Server
	for range receivers {
		rc := &countingReceiver{done: make(chan struct{})}
		rc.want.Store(-1)
		srv := httptest.NewServer(rc)
		rcs, srvs = append(rcs, rc), append(srvs, srv)
		if _, err := d.Create(ctx, store.Webhook{URL: srv.URL, Enabled: true}); err != nil {
			tb.Fatal(err)
		}
	}
	return pub, rcs, func() {
		cancel()
		<-done
		for _, s := range srvs {
			s.Close()
		}
		_ = ring.Close()
	}
}

func publishN(tb testing.TB, pub *gateway.Publisher, n int) {
	tb.Helper()
	const batch = 500
	for n > 0 {
		k := min(n, batch)
		evs := make([]store.Event, k)
		for i := range evs {
			evs[i] = store.Event{Type: "order.created", Data: json.RawMessage(`{"order_id":981,"total":"49.90"}`)}
		}
		if _, err := pub.Publish(context.Background(), evs, nil); err != nil {
			tb.Fatal(err)
		}
		n -= k
	}
}

// BenchmarkDelivery measures signed deliveries per second over keep-alive
// connections to local receivers: one receiver, and 100 receivers each
// getting every event; on the ring and on embedded JetStream (file
// storage). b.N counts deliveries.
func BenchmarkDelivery(b *testing.B) {
	for _, tc := range []struct {
		store                  string
		receivers, concurrency int
	}{{"ring", 1, 8}, {"ring", 1, 32}, {"ring", 100, 8}, {"nats", 1, 8}, {"nats", 1, 32}} {
		b.Run("store="+tc.store+"/receivers="+strconv.Itoa(tc.receivers)+"/concurrency="+strconv.Itoa(tc.concurrency), func(b *testing.B) {
			pub, rcs, stop := benchGateway(b, tc.store, tc.receivers, dispatch.Config{Concurrency: tc.concurrency})
			defer stop()
			events := (b.N + tc.receivers - 1) / tc.receivers
			for _, rc := range rcs {
				rc.want.Store(int64(events))
			}
			b.ResetTimer()
			publishN(b, pub, events)
			for _, rc := range rcs {
				<-rc.done
			}
			b.StopTimer()
			b.ReportMetric(float64(events*tc.receivers)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkIngestToDelivery publishes 1,000 events/s for two seconds to
// one local receiver and reports the p50/p99 time from Publish returning
// to the receiver holding the request, and the process's CPU per delivery
// (the in-process receiver's included; no HTTP ingest, which bench/load
// measures) (b.N is ignored: a fixed load).
func BenchmarkIngestToDelivery(b *testing.B) {
	for _, kind := range []string{"ring", "nats"} {
		b.Run("store="+kind, func(b *testing.B) { benchIngestToDelivery(b, kind) })
	}
}

func benchIngestToDelivery(b *testing.B, kind string) {
	const rate, seconds = 1000, 2
	const total = rate * seconds
	cfg := dispatch.Config{AllowPrivateTargets: true}
	ring := benchLog(b, kind, &cfg)
	pub := gateway.NewPublisher(ring)
	d := dispatch.New(pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	defer func() { cancel(); <-runDone; _ = ring.Close() }()

	sent := make([]atomic.Int64, total+1) // unix nanos when Publish returned, by seq
	arrived := make([]atomic.Int64, total+1)
	var got atomic.Int64
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		body, _ := io.ReadAll(r.Body)
		i := bytes.IndexByte(body, ',')
		seq, _ := strconv.Atoi(string(body[len(`{"seq":`):i]))
		arrived[seq].Store(now)
		w.WriteHeader(http.StatusNoContent)
		if got.Add(1) == total {
			close(all)
		}
	}))
	defer srv.Close()
	if _, err := d.Create(ctx, store.Webhook{URL: srv.URL, Enabled: true}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 1; i <= total; i++ {
		<-tick.C
		out, err := pub.Publish(ctx, []store.Event{{Type: "order.created", Data: json.RawMessage(`{}`)}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		sent[out[0].Seq].Store(time.Now().UnixNano())
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		b.Fatalf("only %d of %d delivered", got.Load(), total)
	}
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/total, "cpu-µs/delivery")
	}
	lat := make([]time.Duration, 0, total)
	for s := 1; s <= total; s++ {
		lat = append(lat, max(0, time.Duration(arrived[s].Load()-sent[s].Load())))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[total/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[total*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[total-1].Microseconds())/1000, "max-ms")
}
