package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileReceiver accepts TCP connections on 127.0.0.1, reads one request's
// head and then misbehaves as act says. Its listener and every connection
// close at cleanup.
func hostileReceiver(t *testing.T, act func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				act(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// Receivers that reset, stall mid-response, answer garbage or never close
// each end as a clean retry with a clear last_error, and hold up nothing.
func TestWebhookHostileReceiversEndAsCleanRetries(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.Disp.Timeout = 500 * time.Millisecond
		o.Disp.Schedule = []time.Duration{time.Hour} // stays "retrying"
	})
	hold := func(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) } // until the gateway or cleanup closes it
	cases := []struct {
		name, wantErr string
		act           func(c *net.TCPConn)
	}{
		{"reset", "reset", func(c *net.TCPConn) { _ = c.SetLinger(0); c.Close() }},
		{"stall mid-response", "500", func(c *net.TCPConn) {
			_, _ = io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1000\r\n\r\npartial")
			hold(c)
		}},
		{"garbage", "malformed", func(c *net.TCPConn) { _, _ = io.WriteString(c, "SSH-2.0-OpenSSH\r\n\r\n"); c.Close() }},
		{"silent", "timeout", hold},
	}
	hooks := map[string]string{}
	for _, c := range cases {
		hooks[c.name] = g.createHook(t, map[string]any{"url": hostileReceiver(t, c.act), "types": []string{"hostile.>"}}).ID
	}
	fine := newReceiver(t, nil)
	fineHook := g.createHook(t, map[string]any{"url": fine.URL, "types": []string{"hostile.>"}})
	seq := g.publish(t, "hostile.event")
	g.waitDelivery(t, fineHook.ID, seq, "succeeded")
	for _, c := range cases {
		d := g.waitDelivery(t, hooks[c.name], seq, "retrying")
		if d.Attempts != 1 || d.LastError == nil || !strings.Contains(strings.ToLower(*d.LastError), c.wantErr) {
			t.Errorf("%s: delivery %+v, want 1 attempt and a last_error naming %q", c.name, d, c.wantErr)
		} else {
			t.Logf("%s: last_error %q", c.name, *d.LastError)
		}
	}
}
