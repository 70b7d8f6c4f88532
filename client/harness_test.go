package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/client"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/internal/gatewaytest"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testGateway is a real gateway (ring, publisher, hub, dispatcher, API)
// behind a real HTTP server on 127.0.0.1.
type testGateway struct {
	URL   string
	Addr  string
	Epoch string
	Pub   *gateway.Publisher
	stop  func()
}

// gwConfig tweaks a test gateway.
type gwConfig struct {
	Addr     string // listen here; default 127.0.0.1:0
	Capacity int    // ring capacity; default 1000
	Hub      gateway.HubConfig
	API      api.Config
}

// startGateway starts a gateway and registers its orderly shutdown (the
// order main uses) with t.Cleanup; Stop does it earlier.
func startGateway(t testing.TB, cfg gwConfig) *testGateway {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 1000
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", cfg.Addr, err)
	}
	ring := store.NewRing(cfg.Capacity)
	reg := prometheus.NewRegistry()
	pub := gateway.NewPublisher(ring)
	cfg.Hub.Registerer = reg
	hub := gateway.NewHub(ring, cfg.Hub)
	disp := dispatch.New(pub, dispatch.Config{AllowPrivateTargets: true, Registerer: reg})
	a := cfg.API
	a.Publisher, a.Hub, a.Dispatcher, a.Registry, a.Capacity = pub, hub, disp, reg, ring.Capacity
	ts := httptest.NewUnstartedServer(api.New(a))
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()

	stop := gatewaytest.Run(pub, hub, disp, ts, ring, 10*time.Second)
	t.Cleanup(stop)
	return &testGateway{URL: ts.URL, Addr: ln.Addr().String(), Epoch: ring.Bounds().Epoch, Pub: pub, stop: stop}
}

// Stop shuts the gateway down as SIGTERM does: streams get everything up
// to the last event, then close 1001; the listener closes.
func (g *testGateway) Stop() { g.stop() }

// newClient returns a client of baseURL with its own connection pool
// (closed at cleanup) and quick retries.
func newClient(t testing.TB, baseURL string, opts ...client.Option) *client.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	opts = append([]client.Option{
		client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithRetry(client.RetryPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}),
	}, opts...)
	c, err := client.New(baseURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testCtx is a context that ends with the test or after a minute.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tcpProxy forwards TCP connections to a target and can cut them all, to
// make a network failure on cue.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(out, in) })
		p.wg.Go(func() { pipe(in, out) })
	}
}

// Cut closes every connection going through the proxy, as a network
// failure would; new connections still go through.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// apiError returns err as an *client.Error, failing the test otherwise.
func apiError(t testing.TB, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *client.Error", err, err)
	}
	return e
}
