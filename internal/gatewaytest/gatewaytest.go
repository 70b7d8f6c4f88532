// Package gatewaytest runs a gateway's goroutines in tests that wire the
// gateway themselves (a store, a publisher, a hub, a dispatcher and the
// API behind an httptest server, as main does).
package gatewaytest

import (
	"context"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Run starts hub's and disp's goroutines and returns the function that
// stops the gateway in the contract's order: the publisher, the hub and
// the dispatcher drain (within timeout), then the goroutines end and ts
// and log are closed. Calling it again does nothing.
func Run(pub *gateway.Publisher, hub *gateway.Hub, disp *dispatch.Dispatcher, ts *httptest.Server, log io.Closer, timeout time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = disp.Run(ctx) })
	return sync.OnceFunc(func() {
		sctx, scancel := context.WithTimeout(context.Background(), timeout)
		defer scancel()
		_ = pub.Shutdown(sctx)
		_ = hub.Shutdown(sctx)
		_ = disp.Shutdown(sctx)
		cancel()
		wg.Wait()
		ts.Close()
		_ = log.Close()
	})
}

// Ring runs a gateway as main wires it on a ring of capacity events, with
// the defaults but webhooks allowed to reach 127.0.0.1, behind an
// httptest server, stopped (Run's order) when the test ends. It returns
// the server's URL.
func Ring(tb testing.TB, capacity int) string {
	tb.Helper()
	ring := store.NewRing(capacity)
	reg := prometheus.NewRegistry()
	pub := gateway.NewPublisher(ring)
	hub := gateway.NewHub(ring, gateway.HubConfig{Registerer: reg})
	disp := dispatch.New(pub, dispatch.Config{AllowPrivateTargets: true, Registerer: reg})
	ts := httptest.NewServer(api.New(api.Config{Publisher: pub, Hub: hub, Dispatcher: disp, Registry: reg, Capacity: ring.Capacity}))
	tb.Cleanup(Run(pub, hub, disp, ts, ring, 10*time.Second))
	return ts.URL
}
