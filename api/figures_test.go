package api_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFigures measures, in one run, ingest events/s (POST /v1/events, one
// event per request, 4 clients) and ingest-to-delivery latency (POST
// sent → webhook request received) on the ring buffer, NATS embedded
// (memory and file storage) and a three-node NATS cluster (R3, file). It
// only runs with EVENTGATE_FIGURES=1 (docs/NATS.md quotes it).
func TestFigures(t *testing.T) {
	if os.Getenv("EVENTGATE_FIGURES") == "" {
		t.Skip("set EVENTGATE_FIGURES=1 to measure")
	}
	const events, clients = 2000, 4
	measure := func(t *testing.T, g *testGateway) {
		var mu sync.Mutex
		sent := map[string]time.Time{}
		var lat []time.Duration
		done := make(chan struct{})
		rc := newReceiver(t, nil)
		g.createHook(t, map[string]any{"url": rc.URL})
		go func() {
			defer close(done)
			for len(lat) < events {
				select {
				case r := <-rc.got:
					id := decode[struct{ ID string }](t, r.Body).ID
					mu.Lock()
					at := sent[id]
					mu.Unlock()
					lat = append(lat, r.At.Sub(at))
				case <-time.After(60 * time.Second):
					return
				}
			}
		}()
		// A plain client: the suite's spec-checking one costs more than
		// the gateway.
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := range events / clients {
					id := fmt.Sprintf("f-%d-%d", c, i)
					mu.Lock()
					sent[id] = time.Now()
					mu.Unlock()
					resp, err := hc.Post(g.URL+"/v1/events", "application/json",
						strings.NewReader(`{"id":"`+id+`","type":"bench.event","data":{"n":1}}`))
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						t.Errorf("POST = %d", resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		<-done
		if len(lat) < events {
			t.Fatalf("%d of %d delivered", len(lat), events)
		}
		slices.Sort(lat)
		t.Logf("FIGURE %-14s ingest %6.0f events/s  delivery p50 %8v  p99 %8v", t.Name()[len("TestFigures/"):],
			float64(events)/elapsed.Seconds(), lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond))
	}
	t.Run("ring", func(t *testing.T) { measure(t, startGateway(t, func(o *options) { o.Capacity = 10_000 })) })
	t.Run("nats-memory", func(t *testing.T) {
		_, nc := connectNATS(t)
		measure(t, startGateway(t, func(o *options) {
			o.Capacity = 10_000
			o.NATS = &natsStore{Conn: nc, Stream: "FIG", Memory: true}
		}))
	})
	t.Run("nats-file", func(t *testing.T) {
		_, nc := connectNATS(t)
		measure(t, startGateway(t, func(o *options) {
			o.Capacity = 10_000
			o.NATS = &natsStore{Conn: nc, Stream: "FIG"}
		}))
	})
	t.Run("nats-3node-R3", func(t *testing.T) {
		srv := startCluster(t)
		st := sharedStore(t, dial(t, srv[0]))
		st.Conn = dial(t, srv[0], srv[1])
		measure(t, startGateway(t, func(o *options) {
			o.Capacity = 10_000
			o.NATS = &st
		}))
	})
}
