package api_test

import (
	"bufio"
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
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/store"
)

// streamLine is one decoded NDJSON line of a stream.
type streamLine struct {
	Hello *store.Bounds `json:"hello"`
	Reset *store.Bounds `json:"reset"`
	Gap   *store.Gap    `json:"gap"`
	Seq   uint64        `json:"seq"`
	Type  string        `json:"type"`
	Raw   string        `json:"-"`
}

func (l streamLine) String() string { return l.Raw }

// wsStream is a test's WebSocket stream client that reads line by line.
type wsStream struct {
	t       testing.TB
	conn    *websocket.Conn
	pending []streamLine
	msgs    int // messages read
}

// wsURL turns the gateway's http URL into a ws URL for path.
func (g *testGateway) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(g.URL, "http") + path
}

// dialStream opens path (e.g. "/v1/stream?types=order.*") as a WebSocket and
// registers its close with t.Cleanup.
func (g *testGateway) dialStream(t testing.TB, path string, opts *websocket.DialOptions) *wsStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, g.wsURL(path), opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &wsStream{t: t, conn: conn}
}

// next returns the next line, reading a message when none is pending. It
// fails the test on a read error or after 10s.
func (s *wsStream) next() streamLine {
	s.t.Helper()
	l, err := s.tryNext()
	if err != nil {
		s.t.Fatalf("read stream: %v", err)
	}
	return l
}

// tryNext is next returning the read error (a close, for instance).
func (s *wsStream) tryNext() (streamLine, error) {
	for len(s.pending) == 0 {
		ctx, cancel := context.WithTimeout(s.t.Context(), 10*time.Second)
		typ, msg, err := s.conn.Read(ctx)
		cancel()
		if err != nil {
			return streamLine{}, err
		}
		if typ != websocket.MessageText {
			return streamLine{}, fmt.Errorf("message type %v, want text", typ)
		}
		s.msgs++
		if len(msg) == 0 || msg[len(msg)-1] != '\n' {
			return streamLine{}, fmt.Errorf("message does not end in a newline: %q", msg)
		}
		for raw := range bytes.SplitSeq(msg[:len(msg)-1], []byte("\n")) {
			var l streamLine
			if rest, ok := bytes.CutPrefix(raw, []byte(`{"seq":`)); ok {
				// Events: the seq is all most tests need; skip a full decode.
				digits, _, _ := bytes.Cut(rest, []byte(","))
				seq, err := strconv.ParseUint(string(digits), 10, 64)
				if err != nil {
					return streamLine{}, fmt.Errorf("line %q: %w", raw, err)
				}
				l.Seq, l.Raw = seq, string(raw)
				s.pending = append(s.pending, l)
				continue
			}
			if err := json.Unmarshal(raw, &l); err != nil {
				return streamLine{}, fmt.Errorf("line %q: %w", raw, err)
			}
			l.Raw = string(raw)
			s.pending = append(s.pending, l)
		}
	}
	l := s.pending[0]
	s.pending = s.pending[1:]
	return l, nil
}

// hello reads the first line and checks that it is a hello.
func (s *wsStream) hello() store.Bounds {
	s.t.Helper()
	l := s.next()
	if l.Hello == nil {
		s.t.Fatalf("first line = %s, want a hello", l)
	}
	return *l.Hello
}

// events reads n event lines, failing on any other line.
func (s *wsStream) events(n int) []streamLine {
	s.t.Helper()
	out := make([]streamLine, 0, n)
	for len(out) < n {
		l := s.next()
		if l.Seq == 0 {
			s.t.Fatalf("line %s after %d events, want an event", l, len(out))
		}
		out = append(out, l)
	}
	return out
}

// wantSeqs checks that lines are exactly the events first..last, in order.
func wantSeqs(t testing.TB, lines []streamLine, first, last uint64) {
	t.Helper()
	if uint64(len(lines)) != last-first+1 {
		t.Fatalf("got %d events, want %d (%d..%d)", len(lines), last-first+1, first, last)
	}
	for i, l := range lines {
		if l.Seq != first+uint64(i) {
			t.Fatalf("event %d has seq %d, want %d (no gap, no duplicate)", i, l.Seq, first+uint64(i))
		}
	}
}

// publishN stores n events of type typ straight through the Publisher and
// returns the last seq.
func (g *testGateway) publishN(t testing.TB, typ string, n int, data string) uint64 {
	t.Helper()
	if data == "" {
		data = `{}`
	}
	var last uint64
	for n > 0 {
		batch := make([]store.Event, min(n, 10)) // smaller than any test's ring
		for i := range batch {
			batch[i] = store.Event{Type: typ, Data: json.RawMessage(data)}
		}
		out, err := g.Pub.Publish(t.Context(), batch, nil)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		last, n = out[len(out)-1].Seq, n-len(batch)
	}
	return last
}

// closeStatus reads until the stream ends and returns its close error.
func (s *wsStream) closeStatus() (websocket.CloseError, []streamLine) {
	s.t.Helper()
	var lines []streamLine
	for {
		l, err := s.tryNext()
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				s.t.Fatalf("stream ended with %v, want a close frame", err)
			}
			return ce, lines
		}
		lines = append(lines, l)
	}
}

// sseStream is a test's Server-Sent Events client.
type sseStream struct {
	t    testing.TB
	resp *http.Response
	r    *bufio.Reader
}

// sseMessage is one SSE message.
type sseMessage struct {
	ID, Event, Data string
}

// openSSE opens path as Server-Sent Events with extra header pairs.
func (g *testGateway) openSSE(t testing.TB, path string, header ...string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s, want 200 text/event-stream: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next message, skipping comments; io.EOF when the
// response ended.
func (s *sseStream) next() (sseMessage, error) {
	var m sseMessage
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				return m, nil
			}
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			seen = true
			switch field {
			case "id":
				m.ID = value
			case "event":
				m.Event = value
			case "data":
				m.Data = value
			}
		}
	}
}

// rawDial opens a WebSocket to path by hand and returns the bare
// connection after the 101: nothing reads it or answers pings, like a dead
// or stuck peer, and it costs the client side next to no memory.
func (g *testGateway) rawDial(t testing.TB, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	// Read the response headers byte by byte so no stream bytes are
	// buffered away.
	var hdr []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(hdr, []byte("\r\n\r\n")) {
		if _, err := conn.Read(one); err != nil {
			t.Fatalf("raw dial: %v after %q", err, hdr)
		}
		hdr = append(hdr, one[0])
	}
	if !bytes.HasPrefix(hdr, []byte("HTTP/1.1 101")) {
		t.Fatalf("raw dial: %s", hdr)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn
}

// metric returns the value of a counter or gauge with the given labels.
func (g *testGateway) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// rawHello reads the first frame from a rawDial connection and checks that
// it is the hello line.
func rawHello(t testing.TB, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(conn, hdr); err != nil || hdr[0] != 0x81 || hdr[1] >= 126 {
		t.Fatalf("first frame header % x, %v", hdr, err)
	}
	payload := make([]byte, hdr[1])
	if _, err := io.ReadFull(conn, payload); err != nil || !bytes.HasPrefix(payload, []byte(`{"hello":`)) {
		t.Fatalf("first frame %q, %v", payload, err)
	}
}
