package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/internal/gatewaytest"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// bigWriteListener accepts connections with a small send buffer and
// reports on bigWrites each Write of at least bigWrite bytes as it begins,
// so a test can await clients that are stuck in one.
type bigWriteListener struct {
	net.Listener
	bigWrites chan struct{}
}

const bigWrite = 256 << 10

func (l *bigWriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.(*net.TCPConn).SetWriteBuffer(4 << 10)
	return &bigWriteConn{Conn: c, l: l}, nil
}

type bigWriteConn struct {
	net.Conn
	l *bigWriteListener
}

func (c *bigWriteConn) Write(p []byte) (int, error) {
	if len(p) >= bigWrite {
		select {
		case c.l.bigWrites <- struct{}{}:
		default:
		}
	}
	return c.Conn.Write(p)
}

// TestStreamSlowClientsShareEventBytes: many WebSocket clients that stop
// reading while a 1 MiB event is sent to them hold the event's bytes once,
// all together, not once each: the live heap grows by far less than the
// event's size per client. (Before the sinks wrote from the shared bytes,
// each client held its own copy in a message buffer: 200 clients, 1 MiB
// event, over 200 MiB.)
func TestStreamSlowClientsShareEventBytes(t *testing.T) {
	clients := 200
	if testing.Short() {
		clients = 50
	}
	const eventSize = 1 << 20
	ring := store.NewRing(100)
	reg := prometheus.NewRegistry()
	pub := gateway.NewPublisher(ring)
	hub := gateway.NewHub(ring, gateway.HubConfig{WriteTimeout: 2 * time.Minute, Registerer: reg})
	disp := dispatch.New(pub, dispatch.Config{Registerer: reg})
	srv := api.New(api.Config{Publisher: pub, Hub: hub, Dispatcher: disp, Registry: reg})
	ts := httptest.NewUnstartedServer(srv)
	ln := &bigWriteListener{Listener: ts.Listener, bigWrites: make(chan struct{}, clients)}
	ts.Listener = ln
	ts.Start()
	stop := gatewaytest.Run(pub, hub, disp, ts, ring, 30*time.Second)
	var conns []*websocket.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.CloseNow() // the stuck writes fail
		}
		stop()
	})

	// Clients with a small receive window read their hello, then nothing.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	t.Cleanup(client.CloseIdleConnections)
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/stream"
	for range clients {
		dctx, dcancel := context.WithTimeout(t.Context(), 30*time.Second)
		c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: client})
		if err == nil {
			conns = append(conns, c)
			_, _, err = c.Read(dctx) // hello: the stream's cursor is set
		}
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := store.Event{ID: "big", Type: "blob.stored", Source: "/test",
		Data: json.RawMessage(`"` + strings.Repeat("x", eventSize-2) + `"`)}
	if _, err := ring.Append(t.Context(), []store.Event{e}, nil); err != nil {
		t.Fatal(err)
	}
	// e is not used again: the ring holds the only copy of the event.
	timeout := time.After(time.Minute)
	for i := range clients {
		select {
		case <-ln.bigWrites:
		case <-timeout:
			t.Fatalf("%d of %d clients are stuck writing the event after a minute", i, clients)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	perClient := (grew - eventSize) / int64(clients)
	t.Logf("%d clients stuck writing a 1 MiB event: heap in use grew %.1f MiB (%d KiB per client beyond the event)",
		clients, float64(grew)/(1<<20), perClient>>10)
	if limit := int64(2*eventSize + clients*48<<10); grew > limit {
		t.Fatalf("heap in use grew %d bytes with %d stuck clients, want at most %d: clients copy the event", grew, clients, limit)
	}
}
