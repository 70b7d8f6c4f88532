package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

func TestStreamFilteredInSeqOrder(t *testing.T) {
	g := startGateway(t)
	g.publishN(t, "order.created", 3, "") // before connecting: not sent without after
	s := g.dialStream(t, "/v1/stream?types=order.*&types=billing.invoice.paid,billing.x", nil)
	if h := s.hello(); h.Newest != 3 || h.Oldest != 1 || h.Epoch != g.Ring.Bounds().Epoch {
		t.Fatalf("hello = %+v, want oldest 1, newest 3, the ring's epoch", h)
	}
	types := []string{"order.created", "order.item.added", "billing.invoice.paid", "user.signed-up", "order.paid", "billing.x"}
	var want []uint64
	for i := range 60 {
		typ := types[i%len(types)]
		seq := g.publishN(t, typ, 1, fmt.Sprintf(`{"i":%d}`, i))
		if typ != "order.item.added" && typ != "user.signed-up" {
			want = append(want, seq)
		}
	}
	got := s.events(len(want))
	for i, l := range got {
		if l.Seq != want[i] {
			t.Fatalf("event %d: %s, want seq %d", i, l, want[i])
		}
	}
	// The lines are the stored JSON, byte for byte.
	rec, err := g.Ring.Get(t.Context(), want[0])
	if err != nil || got[0].Raw != string(rec.JSON) {
		t.Fatalf("line %s, stored %s (%v)", got[0].Raw, rec.JSON, err)
	}
	if got := g.metric(t, "eventgate_stream_clients", "transport", "websocket"); got != 1 {
		t.Fatalf("eventgate_stream_clients = %v, want 1", got)
	}
}

func TestStreamBatchesReadyEventsInOneMessage(t *testing.T) {
	g := startGateway(t)
	g.publishN(t, "a.b", 500, "")
	s := g.dialStream(t, "/v1/stream?after=0", nil)
	s.hello()
	wantSeqs(t, s.events(500), 1, 500)
	// 500 buffered events go in a couple of messages, not 500.
	if s.msgs > 5 {
		t.Fatalf("500 buffered events took %d messages", s.msgs)
	}
}

func TestStreamResumeUnderConcurrentIngest(t *testing.T) {
	const total, batch = 6000, 20
	g := startGateway(t, func(o *options) { o.Capacity = 10000 })
	first := g.publishN(t, "load.test", 1000, "")

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wg.Go(func() { // keep appending while clients replay and switch to live
		for n := int(first); n < total && ctx.Err() == nil; n += batch {
			events := make([]store.Event, batch)
			for i := range events {
				events[i] = store.Event{Type: "load.test", Data: json.RawMessage(`{}`)}
			}
			if _, err := g.Pub.Publish(ctx, events, nil); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	})
	// Clients resume from several points, each while ingest runs.
	for _, after := range []uint64{0, 1, 500, 999} {
		t.Run(fmt.Sprintf("after=%d", after), func(t *testing.T) {
			s := g.dialStream(t, "/v1/stream?after="+itoa(after)+"&epoch="+g.Ring.Bounds().Epoch, nil)
			s.hello()
			wantSeqs(t, s.events(int(total-after)), after+1, total)
		})
	}
}

func TestStreamGapWhenAfterIsBehindTheBuffer(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 100 })
	g.publishN(t, "a.b", 300, "")
	s := g.dialStream(t, "/v1/stream?after=10", nil)
	s.hello()
	l := s.next()
	if l.Gap == nil || l.Gap.From != 11 || l.Gap.To != 200 {
		t.Fatalf("line %s, want gap 11..200", l)
	}
	wantSeqs(t, s.events(100), 201, 300)
}

func TestStreamReset(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 100 })
	g.publishN(t, "a.b", 150, "")
	epoch := g.Ring.Bounds().Epoch
	for name, query := range map[string]string{
		"after beyond newest": "after=151&epoch=" + epoch,
		"foreign epoch":       "after=120&epoch=0123456789abcdef",
	} {
		t.Run(name, func(t *testing.T) {
			s := g.dialStream(t, "/v1/stream?"+query, nil)
			s.hello()
			l := s.next()
			if l.Reset == nil || *l.Reset != (store.Bounds{Epoch: epoch, Oldest: 51, Newest: 150}) {
				t.Fatalf("line %s, want reset {epoch %s, oldest 51, newest 150}", l, epoch)
			}
			wantSeqs(t, s.events(100), 51, 150)
		})
	}
}

func TestStreamBadRequests(t *testing.T) {
	g := startGateway(t)
	ws := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	for _, tc := range []struct {
		name, query string
		header      []string
		field       string
	}{
		{"bad pattern", "types=order..created", ws, "types"},
		{"bad pattern in list", "types=order.*,a.>.b", ws, "types"},
		{"bad after", "after=-1", ws, "after"},
		{"bad Last-Event-ID", "", []string{"Accept", "text/event-stream", "Last-Event-ID", "x"}, "Last-Event-ID"},
		{"neither websocket nor sse", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, http.MethodGet, "/v1/stream?"+tc.query, "", nil, tc.header...)
			p := wantProblem(t, resp, body, http.StatusBadRequest, "bad-request")
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Fatalf("errors = %v, want one for %s", p.fields(), tc.field)
			}
		})
	}
}

func TestStreamAuth(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.Keys = []string{"k1", "k2"} })
	ctx := t.Context()
	_, resp, err := websocket.Dial(ctx, g.wsURL("/v1/stream"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without a key: %v, %v; want 401", err, resp)
	}
	_, resp, err = websocket.Dial(ctx, g.wsURL("/v1/stream?access_token=nope"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with a wrong key: %v, %v; want 401", err, resp)
	}
	byQuery := g.dialStream(t, "/v1/stream?types=a.*&access_token=k2", nil)
	byHeader := g.dialStream(t, "/v1/stream", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer k1"}}})
	byQuery.hello()
	byHeader.hello()
	seq := g.publishN(t, "a.b", 1, "")
	if l := byQuery.next(); l.Seq != seq {
		t.Fatalf("got %s, want seq %d", l, seq)
	}
	if l := byHeader.next(); l.Seq != seq {
		t.Fatalf("got %s, want seq %d", l, seq)
	}
	sse := g.openSSE(t, "/v1/stream?access_token=k1")
	if m, err := sse.next(); err != nil || m.Event != "hello" {
		t.Fatalf("sse with access_token: %+v, %v", m, err)
	}
}

func TestStreamSSEResumeWithLastEventID(t *testing.T) {
	g := startGateway(t)
	g.publishN(t, "a.b", 20, "")
	s := g.openSSE(t, "/v1/stream?after=2&types=a.>", "Last-Event-ID", "15") // the header wins
	m, err := s.next()
	if err != nil || m.Event != "hello" || m.ID != "" || !strings.HasPrefix(m.Data, `{"hello":{`) {
		t.Fatalf("first message %+v, %v; want event: hello", m, err)
	}
	epoch := g.Ring.Bounds().Epoch
	g.publishN(t, "a.c", 5, "")
	for want := uint64(16); want <= 25; want++ {
		m, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Seq uint64 }
		if m.Event != "" || m.ID != epoch+"-"+itoa(want) || json.Unmarshal([]byte(m.Data), &e) != nil || e.Seq != want {
			t.Fatalf("message %+v, want id %s-%d", m, epoch, want)
		}
	}
	if got := g.metric(t, "eventgate_stream_clients", "transport", "sse"); got != 1 {
		t.Fatalf("eventgate_stream_clients{sse} = %v, want 1", got)
	}
}

func TestStreamSSEGapAndShutdown(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 10 })
	g.publishN(t, "a.b", 30, "")
	s := g.openSSE(t, "/v1/stream", "Last-Event-ID", "5")
	if m, _ := s.next(); m.Event != "hello" {
		t.Fatalf("%+v, want hello", m)
	}
	if m, _ := s.next(); m.Event != "gap" || m.Data != `{"gap":{"from":6,"to":20}}` {
		t.Fatalf("%+v, want the gap 6..20", m)
	}
	for want := 21; want <= 30; want++ {
		if m, err := s.next(); err != nil || m.ID != fmt.Sprint(g.Ring.Bounds().Epoch, "-", want) {
			t.Fatalf("%+v, %v; want id <epoch>-%d", m, err, want)
		}
	}
	shutdown(t, g)
	if m, err := s.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after shutdown: %+v, %v; want the response to end", m, err)
	}
}

// shutdown runs the contract's order: ingest stops, then the hub flushes.
func shutdown(t testing.TB, g *testGateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := g.Pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Hub.Shutdown(ctx); err != nil {
		t.Fatalf("hub shutdown: %v", err)
	}
}

func TestStreamShutdownFlushesThenCloses1001(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 5000 })
	live := g.dialStream(t, "/v1/stream", nil)
	filtered := g.dialStream(t, "/v1/stream?types=x.*&after=0", nil)
	live.hello()
	filtered.hello()
	g.publishN(t, "x.y", 2000, `{"pad":"`+strings.Repeat("p", 200)+`"}`)
	last := g.publishN(t, "z.z", 10, "")

	done := make(chan error, 1)
	go func() { // the clients have not read anything yet: the flush has work
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Pub.Shutdown(ctx)
		done <- g.Hub.Shutdown(ctx)
	}()
	ce, lines := live.closeStatus()
	if ce.Code != websocket.StatusGoingAway {
		t.Fatalf("close %v, want 1001", ce)
	}
	wantSeqs(t, lines, 1, last)
	ce, lines = filtered.closeStatus()
	if ce.Code != websocket.StatusGoingAway {
		t.Fatalf("close %v, want 1001", ce)
	}
	wantSeqs(t, lines, 1, 2000)
	if err := <-done; err != nil {
		t.Fatalf("hub shutdown: %v", err)
	}
	// A draining gateway refuses new WebSocket streams before any upgrade
	// (SSE clients are told to retry instead: TestStreamSSEDuringShutdownSaysRetry).
	resp, body := g.do(t, http.MethodGet, "/v1/stream", "", nil, "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
}

func TestStreamShutdownTimesOutOnStuckClient(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 5000 })
	conn := g.rawDial(t, "/v1/stream")
	rawHello(t, conn)                                                     // then never reads again
	g.publishN(t, "a.b", 2000, `{"pad":"`+strings.Repeat("p", 4000)+`"}`) // ~8 MB: more than the socket holds
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_ = g.Pub.Shutdown(ctx)
	if err := g.Hub.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hub shutdown = %v, want the deadline", err)
	}
	// Run returns once the forced client is gone (the harness's Cleanup
	// waits for it; goleak checks nothing is left).
}

func TestStreamDeadPeerIsDroppedByPing(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.Hub.PingInterval = 20 * time.Millisecond
		o.Hub.PongTimeout = 50 * time.Millisecond
	})
	conn := g.rawDial(t, "/v1/stream")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn) // ends when the server gives up on us
	if err != nil {
		t.Fatalf("read: %v (the server did not drop a peer that never answers pings)", err)
	}
	// The hello message, then a ping frame (opcode 0x9) we never answered.
	if len(got) < 2 || got[0] != 0x81 || !strings.Contains(string(got), "\x89") {
		t.Fatalf("server sent % x", got)
	}
}

// A client that answers pings stays connected ping after ping, and its
// stream goes on.
func TestStreamLivePeerAnswersPingsAndStays(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.Hub.PingInterval = 10 * time.Millisecond
		o.Hub.PongTimeout = 5 * time.Second
	})
	// The client handles pings inside its reads, in this goroutine: the
	// third ping publishes the event the read then gets. Each ping after
	// the first was sent only once the previous one had its pong.
	pings, published := 0, uint64(0)
	s := g.dialStream(t, "/v1/stream", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		if pings++; pings == 3 {
			published = g.publishN(t, "a.b", 1, "")
		}
		return true // answer it
	}})
	s.hello()
	if l := s.next(); pings < 3 || l.Seq != published {
		t.Fatalf("after 3 pings got %s", l)
	}
}

func TestStreamCloudEventsSubprotocol(t *testing.T) {
	g := startGateway(t)
	conn, _, err := websocket.Dial(t.Context(), g.wsURL("/v1/stream?types=shop.>"), &websocket.DialOptions{Subprotocols: []string{"cloudevents.json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if conn.Subprotocol() != "cloudevents.json" {
		t.Fatalf("subprotocol %q", conn.Subprotocol())
	}
	read := func() map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		typ, msg, err := conn.Read(ctx)
		if err != nil || typ != websocket.MessageText {
			t.Fatalf("read: %v %v", typ, err)
		}
		var m map[string]any
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("frame %s: %v", msg, err)
		}
		return m
	}
	hello := read()
	if hello["type"] != "eventgate.stream.hello" || hello["source"] != "/eventgate" || hello["specversion"] != "1.0" || hello["seq"] != nil {
		t.Fatalf("hello frame %v", hello)
	}
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/cloudevents-batch+json", []byte(`[
		{"specversion":"1.0","id":"c1","source":"/shop","type":"shop.order.created","subject":"o/1","time":"2026-01-02T03:04:05Z","data":{"n":1},"tenant":"acme","dataschema":"https://x.test/s"},
		{"specversion":"1.0","id":"c2","source":"/shop","type":"other.thing","data":{}},
		{"specversion":"1.0","id":"c3","source":"/shop","type":"shop.blob","datacontenttype":"application/octet-stream","data_base64":"AAEC"}]`))
	wantStatus(t, resp, body, http.StatusAccepted)

	first := read() // one CloudEvent per frame
	want := map[string]any{"specversion": "1.0", "id": "c1", "source": "/shop", "type": "shop.order.created", "subject": "o/1",
		"time": "2026-01-02T03:04:05Z", "datacontenttype": "application/json", "data": map[string]any{"n": float64(1)},
		"tenant": "acme", "dataschema": "https://x.test/s", "seq": "1"}
	if fmt.Sprint(first) != fmt.Sprint(want) {
		t.Fatalf("frame\n %v\nwant\n %v", first, want)
	}
	third := read()
	if third["seq"] != "3" || third["data_base64"] != "AAEC" || third["datacontenttype"] != "application/octet-stream" || third["data"] != nil {
		t.Fatalf("binary frame %v", third)
	}
}

// The contract ignores messages from clients; one over the read limit, or
// a broken frame, ends that client only.
func TestStreamClientMessagesAreIgnoredAndGarbageClosesOnlyThatClient(t *testing.T) {
	g := startGateway(t)
	chatty := g.dialStream(t, "/v1/stream", nil)
	huge := g.dialStream(t, "/v1/stream", nil)
	broken := g.rawDial(t, "/v1/stream")
	rawHello(t, broken)
	chatty.hello()
	huge.hello()
	if err := chatty.conn.Write(t.Context(), websocket.MessageText, []byte("hello server")); err != nil {
		t.Fatal(err)
	}
	// The server may close before the client has written it all.
	_ = huge.conn.Write(t.Context(), websocket.MessageBinary, make([]byte, 8<<10))
	for {
		_, err := huge.tryNext()
		if err == nil {
			continue
		}
		if code := websocket.CloseStatus(err); code != -1 && code != websocket.StatusMessageTooBig {
			t.Fatalf("close %v, want 1009 (or a reset)", err)
		}
		break
	}
	// An unmasked frame with a reserved opcode: a protocol error.
	if _, err := broken.Write([]byte{0x83, 0x00}); err != nil {
		t.Fatal(err)
	}
	_ = broken.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(broken); err != nil {
		t.Fatalf("broken client: %v, want the server to close it", err)
	}
	seq := g.publishN(t, "a.b", 1, "")
	if l := chatty.next(); l.Seq != seq {
		t.Fatalf("chatty client got %s", l)
	}
}

// A client may send frames right behind its handshake, before the 101
// arrives. net/http has read them already when the connection is hijacked,
// and the stream's own (smaller) buffers must keep them: whether they fit
// its read buffer or need more than it holds.
func TestStreamFramesPipelinedWithTheHandshakeAreKept(t *testing.T) {
	g := startGateway(t)
	for _, data := range []int{0, 2000} {
		t.Run(fmt.Sprintf("data=%d", data), func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			out := []byte("GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			if data > 0 { // a data message: the server reads and ignores it
				out = appendClientFrame(out, 0x1, bytes.Repeat([]byte("d"), data))
			}
			out = appendClientFrame(out, 0x9, []byte("pipelined ping"))
			if _, err := conn.Write(out); err != nil { // one write: one segment on loopback
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			// The hello and the pong, in either order.
			var hello, pong bool
			for !hello || !pong {
				op, payload, err := readServerFrame(br)
				if err != nil {
					t.Fatalf("read frame: %v (hello %v, pong %v)", err, hello, pong)
				}
				switch {
				case op == 0x1 && bytes.HasPrefix(payload, []byte(`{"hello":`)):
					hello = true
				case op == 0xA && string(payload) == "pipelined ping":
					pong = true
				default:
					t.Fatalf("unexpected frame: opcode %#x %q", op, payload)
				}
			}
		})
	}
}

// Without a connection to hijack (an HTTP/2 or recorded response) the
// upgrade is refused with 501 before any 101 is written, and the stream is
// released.
func TestStreamUpgradeWithoutHijackerIs501(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Hub.MaxClients = 1 })
	for range 2 { // the second would find the hub full if the first leaked
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/stream", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Version", "13")
		rec := httptest.NewRecorder()
		g.Server.Config.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotImplemented {
			t.Fatalf("status %d, want 501: %s", rec.Code, rec.Body)
		}
	}
}

// appendClientFrame appends a final, masked client frame (RFC 6455 5.2).
func appendClientFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	if len(payload) < 126 {
		b = append(b, 0x80|byte(len(payload)))
	} else {
		b = append(b, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readServerFrame reads one unmasked, unfragmented server frame.
func readServerFrame(r io.Reader) (opcode byte, payload []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return 0, nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(hdr[:8])
	}
	opcode = hdr[0] & 0x0f
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return opcode, payload, err
}

// The contract's slow-consumer rule: a client that does not read is cut off
// with 1008 and its last seq, while a fast client on the same stream gets
// everything and ingest goes on.
func TestStreamSlowConsumerIsCutOff(t *testing.T) {
	const queue, total, batch = 300, 2500, 100
	drops := make(chan gateway.Drop, 10)
	g := startGateway(t, func(o *options) {
		o.Capacity = 2 * total
		o.Hub.Queue = queue
		o.Hub.OnDrop = func(d gateway.Drop) { drops <- d }
	})
	slow := g.dialStream(t, "/v1/stream", nil) // reads nothing until the end
	fast := g.dialStream(t, "/v1/stream", nil)
	fast.hello()

	pad := strings.Repeat("p", 4000) // ~10 MB in all: more than the socket buffers hold
	var slowest time.Duration
	var got []streamLine
	for n := 0; n < total; n += batch {
		if n > 0 { // the fast client keeps up: it has what was published
			got = append(got, fast.events(batch)...)
		}
		if n%(5*batch) != 0 {
			g.publishN(t, "load.big", batch, `{"pad":"`+pad+`"}`)
			continue
		}
		events := make([]map[string]any, batch) // every fifth batch over HTTP, timed
		for i := range events {
			events[i] = map[string]any{"type": "load.big", "data": map[string]string{"pad": pad}}
		}
		start := time.Now()
		resp, body := g.postJSON(t, "/v1/events", events)
		wantStatus(t, resp, body, http.StatusAccepted)
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest POST of %d events while a client was stuck: %v", batch, slowest)
	wantSeqs(t, append(got, fast.events(batch)...), 1, total)

	ce, lines := slow.closeStatus()
	var last uint64
	if ce.Code != websocket.StatusPolicyViolation || !strings.HasPrefix(ce.Reason, "slow consumer: last seq ") {
		t.Fatalf("slow client closed with %v, want 1008 and its last seq", ce)
	}
	fmt.Sscanf(strings.TrimPrefix(ce.Reason, "slow consumer: last seq "), "%d", &last)
	if len(lines) == 0 || lines[0].Hello == nil {
		t.Fatalf("slow client got no hello")
	}
	wantSeqs(t, lines[1:], 1, last)
	if last >= total {
		t.Fatalf("last seq %d: the slow client was not behind", last)
	}
	t.Logf("slow client cut off after seq %d of %d", last, total)
	select {
	case d := <-drops:
		if d.LastSeq != last || d.Transport != "websocket" || d.Lag <= queue || d.Queue != queue {
			t.Fatalf("OnDrop(%+v), want last seq %d", d, last)
		}
	case <-t.Context().Done():
		t.Fatal("OnDrop was not called")
	}
	if got := g.metric(t, "eventgate_stream_slow_disconnects_total", "transport", "websocket"); got != 1 {
		t.Fatalf("slow disconnects = %v, want 1", got)
	}
}

func TestStreamThousandSubscribersEachGetEveryEvent(t *testing.T) {
	const subs, events = 1000, 100
	g := startGateway(t)
	streams := make([]*wsStream, subs)
	var dial sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, subs)
	for i := range streams {
		dial.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, g.wsURL("/v1/stream"), nil)
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { _ = conn.CloseNow() })
			s := &wsStream{t: t, conn: conn}
			if l, err := s.tryNext(); err != nil || l.Hello == nil { // the cursor is set
				errs <- fmt.Errorf("first line %s: %w", l, err)
				return
			}
			streams[i] = s
		})
	}
	dial.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := g.publishN(t, "fan.out", events, `{"n":1}`)

	var read sync.WaitGroup
	bad := make(chan string, subs)
	for i, s := range streams {
		read.Go(func() {
			for want := last - events + 1; want <= last; want++ {
				l, err := s.tryNext()
				if err != nil || l.Seq != want {
					bad <- fmt.Sprintf("subscriber %d: got %s, %v; want seq %d", i, l, err, want)
					return
				}
			}
		})
	}
	read.Wait()
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	msgs := 0
	for _, s := range streams {
		msgs += s.msgs
	}
	t.Logf("%d subscribers × %d events: %d messages (%.1f events per message)", subs, events, msgs, float64(subs*events)/float64(msgs))
}

func TestStreamDropIsRecordedAsAnOperationalEvent(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.Capacity = 5000
		o.Hub.Queue = 50
		o.Hub.MaxBatch = 1 // one event per message: a burst of 100 leaves a reader 99 behind
		o.RecordDrops = true
	})
	watcher := g.dialStream(t, "/v1/stream?types=eventgate.stream.dropped", nil)
	watcher.hello()
	slow := g.dialStream(t, "/v1/stream?types=load.>", nil) // never reads
	g.publishN(t, "load.big", 1, `{}`)                      // the slow client is live and has its hello
	events := make([]map[string]any, 100)
	for i := range events {
		events[i] = map[string]any{"type": "load.big", "data": i}
	}
	resp, body := g.postJSON(t, "/v1/events", events) // one burst, far past the queue
	wantStatus(t, resp, body, http.StatusAccepted)
	ev := watcher.events(1)[0]
	var e struct {
		Type   string `json:"type"`
		Source string `json:"source"`
		Data   struct {
			Transport string   `json:"transport"`
			Types     []string `json:"types"`
			LastSeq   uint64   `json:"last_seq"`
			Queue     int      `json:"queue"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(ev.Raw), &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != "eventgate.stream.dropped" || e.Source != "/eventgate" || e.Data.Transport != "websocket" ||
		len(e.Data.Types) != 1 || e.Data.Types[0] != "load.>" || e.Data.Queue != 50 {
		t.Fatalf("drop event = %s", ev.Raw)
	}
	if ce, _ := slow.closeStatus(); ce.Code != websocket.StatusPolicyViolation {
		t.Fatalf("slow client closed with %v, want 1008", ce)
	}
}

func TestStreamCapRefusesWith503(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Hub.MaxClients = 2 })
	a := g.dialStream(t, "/v1/stream", nil)
	a.hello()
	b := g.dialStream(t, "/v1/stream", nil)
	b.hello()
	resp, body := g.do(t, http.MethodGet, "/v1/stream", "", nil, "Accept", "text/event-stream")
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if got := g.metric(t, "eventgate_stream_refused_total"); got != 1 {
		t.Fatalf("refused = %v, want 1", got)
	}
}

// TestStreamSSEIDsCarryTheEpoch: a Last-Event-ID from another log (the
// ring restarted: new epoch, seqs from 1 again) gets a reset, not a silent
// skip; one from this log resumes after its seq; a bare seq still works.
func TestStreamSSEIDsCarryTheEpoch(t *testing.T) {
	g := startGateway(t)
	g.publishN(t, "a.b", 8, "")
	epoch := g.Ring.Bounds().Epoch

	s := g.openSSE(t, "/v1/stream", "Last-Event-ID", "an-earlier-epoch-5")
	if m, _ := s.next(); m.Event != "hello" {
		t.Fatalf("%+v, want hello", m)
	}
	if m, err := s.next(); err != nil || m.Event != "reset" {
		t.Fatalf("%+v, %v; want a reset for an id of another log", m, err)
	}

	s = g.openSSE(t, "/v1/stream", "Last-Event-ID", epoch+"-5")
	if m, _ := s.next(); m.Event != "hello" {
		t.Fatalf("%+v, want hello", m)
	}
	if m, err := s.next(); err != nil || m.ID != epoch+"-6" {
		t.Fatalf("%+v, %v; want id %s-6 next", m, err, epoch)
	}
	s = g.openSSE(t, "/v1/stream", "Last-Event-ID", "7")
	s.next() // hello
	if m, err := s.next(); err != nil || m.ID != epoch+"-8" {
		t.Fatalf("%+v, %v; want id %s-8 after a bare 7", m, err, epoch)
	}
}

// TestStreamSSEDuringShutdownSaysRetry: an SSE request that comes while
// the gateway shuts down gets a 200 event stream with a retry: hint that
// ends at once, never a status that makes EventSource give up.
func TestStreamSSEDuringShutdownSaysRetry(t *testing.T) {
	g := startGateway(t)
	shutdown(t, g)
	resp, body := g.do(t, http.MethodGet, "/v1/stream", "", nil, "Accept", "text/event-stream")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(string(body), "retry: 3000") {
		t.Fatalf("SSE during shutdown = %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = g.do(t, http.MethodGet, "/v1/stream", "", nil)
	wantProblem(t, resp, body, http.StatusBadRequest, "bad-request") // neither WebSocket nor SSE: still a plain answer
}

// A WebSocket client that stops reading, with room left in its queue, is
// cut off once a write has waited WriteTimeout on its full TCP buffers:
// the stream's write context ends the connection mid-write.
func TestStreamWriteTimeoutEndsAStuckWrite(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.Capacity = 5000
		o.Hub.WriteTimeout = 300 * time.Millisecond
		o.Hub.Queue = 100000       // the queue never cuts it off first
		o.Hub.QueueBytes = 1 << 30 // nor its bytes
		o.Hub.MaxMessageBytes = 256 << 10
	})
	stuck := g.dialStream(t, "/v1/stream?types=load.>", nil) // never reads after its hello
	stuck.hello()
	data := `"` + strings.Repeat("x", 60<<10) + `"`
	events := make([]map[string]any, 10)
	for i := range events {
		events[i] = map[string]any{"type": "load.big", "data": json.RawMessage(data)}
	}
	// 24 MiB, well past what loopback buffers take: the write blocks.
	// Closing the connection mid-write also ends the stream's reader, so
	// the end is counted as write_error or gone, whichever the hub hears
	// first.
	for range 40 {
		resp, body := g.postJSON(t, "/v1/events", events)
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	eventually(t, 10*time.Second, "the stuck client to be cut off", func() bool {
		return g.metric(t, "eventgate_stream_clients", "transport", "websocket") == 0
	})
	if n := g.metric(t, "eventgate_stream_slow_disconnects_total", "transport", "websocket"); n != 0 {
		t.Fatalf("cut off as slow (%v), want by the write timeout", n)
	}
}
