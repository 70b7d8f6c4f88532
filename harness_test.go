package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Helpers shared by the process-level fault and soak tests: they drive the
// real gateway started by startRun over loopback HTTP and WebSocket.

// createWebhook registers a webhook for url on types and returns its id and
// secret.
func createWebhook(t testing.TB, base, url string, types ...string) (id, secret string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"url": url, "types": types})
	resp, err := http.Post(base+"/v1/webhooks", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks = %d %s", resp.StatusCode, b)
	}
	var w struct{ ID, Secret string }
	if err := json.Unmarshal(b, &w); err != nil || w.ID == "" {
		t.Fatalf("webhook answer %s: %v", b, err)
	}
	return w.ID, w.Secret
}

// eventLine extracts seq and type from one stored event's JSON, which the
// gateway writes as {"seq":N,"id":…,"type":"…",…}. It reports false for
// lines that are not events (hello, gap, reset). It avoids a full decode:
// a hundred stream clients under the race detector must keep up.
func eventLine(b []byte) (seq uint64, typ string, ok bool) {
	const pfx = `{"seq":`
	if !bytes.HasPrefix(b, []byte(pfx)) {
		return 0, "", false
	}
	rest := b[len(pfx):]
	i := bytes.IndexByte(rest, ',')
	if i < 0 {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return 0, "", false
	}
	const tk = `"type":"`
	if j := bytes.Index(rest, []byte(tk)); j >= 0 {
		t := rest[j+len(tk):]
		if k := bytes.IndexByte(t, '"'); k >= 0 {
			typ = string(t[:k])
		}
	}
	return seq, typ, true
}

// smallBufferDialer dials with a small socket receive buffer, so that a
// client that stops reading backs the gateway up after a few kilobytes
// instead of the megabytes loopback autotuning would otherwise allow.
func smallBufferDialer() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// dialStream opens /v1/stream on base with query q and reads its hello line.
func dialStream(ctx context.Context, client *http.Client, base, q string) (*websocket.Conn, error) {
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/stream?" + q
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}

// logRecords decodes the gateway's JSON log.
func logRecords(t testing.TB, log string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(log) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		recs = append(recs, m)
	}
	return recs
}

// counts is a receiver's tally of deliveries per seq, safe for concurrent
// use.
type counts struct {
	mu sync.Mutex
	n  []uint16 // n[seq]: successful deliveries of seq
}

func (c *counts) add(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for uint64(len(c.n)) <= seq {
		c.n = append(c.n, make([]uint16, max(len(c.n), 1024))...)
	}
	c.n[seq]++
}

func (c *counts) get(seq uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq >= uint64(len(c.n)) {
		return 0
	}
	return int(c.n[seq])
}
