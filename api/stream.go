package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/go-chi/chi/v5"
)

// ceSubprotocol is the CloudEvents WebSocket binding's JSON subprotocol.
const ceSubprotocol = "cloudevents.json"

// streamRoutes adds /stream to r, the /v1 router: the request is checked and the client
// registered with the hub before any upgrade, then the hub serves it
// through a Sink: wsSink in a goroutine of the hub's (Stream.Go), sseSink in
// this handler's goroutine (Stream.Serve).
func (s *Server) streamRoutes(r chi.Router) {
	r.Get("/stream", s.stream)
}

// stream handles GET /v1/stream.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	errs := unknownParams(q, streamParams)
	pats := typePatterns(q)
	if tooManyPatterns(w, "types", pats) {
		return
	}
	filter, err := store.ParseFilter(pats)
	if err != nil {
		errs = append(errs, FieldError{Field: "types", Message: err.Error()})
	}
	sub := gateway.Subscription{Filter: filter, Epoch: q.Get("epoch"), Remote: r.RemoteAddr}
	if q.Has("after") {
		sub.Resume = true
		if sub.After, err = strconv.ParseUint(q.Get("after"), 10, 64); err != nil {
			errs = append(errs, FieldError{Field: "after", Message: "must be a non-negative integer"})
		}
	}
	ws := headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
	sse := !ws && acceptsEventStream(r.Header)
	if id := r.Header.Get("Last-Event-ID"); sse && id != "" {
		sub.Resume = true
		var epoch string
		if epoch, sub.After, err = parseEventID(id); err != nil {
			errs = append(errs, FieldError{Field: "Last-Event-ID", Message: "must be an event id this stream sent (<epoch>-<seq>) or a seq"})
		} else if epoch != "" {
			sub.Epoch = epoch
		}
	}
	if errs != nil {
		fail(w, http.StatusBadRequest, "invalid stream parameters", errs...)
		return
	}
	if !ws && !sse {
		fail(w, http.StatusBadRequest, "open the stream as a WebSocket (Upgrade: websocket) or as Server-Sent Events (Accept: text/event-stream)")
		return
	}
	if a := accessOf(r); a != nil { // a token: its scope, until it expires
		var p *Problem
		if sub.Filter, p = a.readFilter("types", pats, sub.Filter); p != nil {
			writeProblem(w, *p)
			return
		}
		sub.Expires, sub.ExpireReason = a.expires, "token expired"
	}
	sub.Transport = "sse"
	if ws {
		sub.Transport = "websocket"
	}
	st, err := s.cfg.Hub.Open(sub)
	if sse && errors.Is(err, gateway.ErrHubClosed) {
		sseRetryLater(w)
		return
	}
	if err != nil {
		s.Error(w, r, "open stream", err)
		return
	}
	defer st.Release()
	if ws {
		s.serveWebSocket(w, r, st)
	} else {
		s.serveSSE(w, r, st)
	}
}

// serveWebSocket upgrades and hands st to the hub, which serves it in a
// goroutine of its own (Stream.Go) that owns the connection: it writes,
// pings and closes. This handler then returns, so an idle stream keeps no
// handler stack or request state. One reader goroutine, started here and
// waited for by the serving goroutine, does what the protocol needs: it
// answers pings, delivers pongs, notices the peer's close and discards data
// messages (the contract ignores them). A message over the read limit or a
// broken frame ends the read, which ends this client only.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, st *gateway.Stream) {
	w = smallBufs(w, wsReadBufSize, wsWriteBufSize)
	// checkOrigin has refused other origins with a problem document; Accept
	// checks again (same origin only) should it not have run.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{ceSubprotocol}, InsecureSkipVerify: originChecked(r)})
	if err != nil {
		s.cfg.Logger.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // Accept has answered
	}
	conn.SetReadLimit(4 << 10)
	sink := &wsSink{conn: conn}
	if conn.Subprotocol() == ceSubprotocol {
		sink.ce = s.ce
	}
	// The request's context is not to be used after a hijack: the stream
	// lives until the peer goes (the reader calls peerGone) or the hub
	// ends it. The serving goroutine waits for the reader, which is counted
	// before either starts.
	var reader sync.WaitGroup
	reader.Add(1)
	remote, logger := r.RemoteAddr, s.cfg.Logger
	peerGone := st.Go(sink, func(err error) {
		_ = conn.CloseNow() // unblocks the reader
		reader.Wait()
		logger.Debug("websocket stream ended", "remote", remote, "err", err)
	})
	go func() {
		defer reader.Done()
		defer peerGone()
		for {
			// Background: only closing the connection ends this read.
			_, msg, err := conn.Reader(context.Background())
			if err == nil {
				_, err = io.Copy(io.Discard, msg)
			}
			if err != nil {
				return
			}
		}
	}()
}

// wsSink writes a stream to a WebSocket: NDJSON, all that is ready in one
// text message, or with the cloudevents.json subprotocol one structured
// CloudEvent per text message.
//
// A Send's ctx ends the connection when it ends during the Send (its
// deadline passed: the peer does not read). coder/websocket would watch
// ctx with a context.AfterFunc made and stopped per write (4–7% of the
// CPU of a fan-out at 1,000 events/s); the sink watches the stream's one
// write context once instead (the hub gives every Send the same one until
// it ends), and writes with a context that has no Done.
type wsSink struct {
	conn *websocket.Conn
	ce   *ceCache // nil: NDJSON

	writing   atomic.Bool     // a Send is writing: an ended ctx closes the connection
	watch     atomic.Uint64   // which watch the Send writing is under
	watched   <-chan struct{} // the Done of the ctx watched
	stopWatch func() bool
	writeCtx  context.Context // the watched ctx without its Done, to write with
}

// begin arms the watch on ctx for one Send and returns the context to
// write with, or ctx's error when it has already ended. end disarms it.
func (k *wsSink) begin(ctx context.Context) (context.Context, error) {
	if done := ctx.Done(); done != k.watched || k.writeCtx == nil { // a new ctx, or the first (maybe with no Done)
		if k.stopWatch != nil {
			k.stopWatch()
		}
		k.watched, k.stopWatch, k.writeCtx = done, nil, context.WithoutCancel(ctx)
		gen := k.watch.Add(1) // a late callback of an older watch leaves later Sends alone
		if done != nil {
			k.stopWatch = context.AfterFunc(ctx, func() {
				if k.writing.Load() && k.watch.Load() == gen {
					_ = k.conn.CloseNow()
				}
			})
		}
	}
	k.writing.Store(true) // before the check: a ctx that ends after it finds the flag
	if err := ctx.Err(); err != nil {
		k.writing.Store(false)
		return nil, err
	}
	return k.writeCtx, nil
}

func (k *wsSink) end() { k.writing.Store(false) }

// Send implements gateway.Sink: one text message. Events' JSON is written
// from the shared record bytes (see msgPieces): a message larger than the
// pieces buffer spans WebSocket frames (Conn.Writer).
func (k *wsSink) Send(ctx context.Context, meta []gateway.Meta, recs []store.Record) (int, error) {
	ctx, err := k.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer k.end()
	if k.ce != nil {
		return k.sendCloudEvents(ctx, meta, recs)
	}
	var mw io.WriteCloser
	m := newMsgPieces(func() (io.Writer, error) {
		var err error
		mw, err = k.conn.Writer(ctx, websocket.MessageText)
		return mw, err
	})
	for _, x := range meta {
		m.appendPiece(func(b []byte) []byte { return append(x.AppendJSON(b), '\n') })
	}
	for i := range recs {
		m.write(recs[i].JSON)
		m.write(newline)
	}
	err = m.finish(func(b []byte) error { return k.conn.Write(ctx, websocket.MessageText, b) },
		func() error { return mw.Close() })
	if err != nil {
		return 0, err
	}
	return 1, nil
}

var newline, sseEnd = []byte("\n"), []byte("\n\n")

func (k *wsSink) sendCloudEvents(ctx context.Context, meta []gateway.Meta, recs []store.Record) (int, error) {
	n := 0
	for _, m := range meta {
		if err := k.conn.Write(ctx, websocket.MessageText, metaCloudEvent(m)); err != nil {
			return n, err
		}
		n++
	}
	for i := range recs {
		ce, err := k.ce.get(recs[i])
		if err != nil {
			return n, err
		}
		if err := k.conn.Write(ctx, websocket.MessageText, ce); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Ping implements gateway.Sink: a WebSocket ping, answered by the peer's
// pong, which only a concurrent Reader call sees: the reader goroutine
// serveWebSocket starts is that reader.
func (k *wsSink) Ping(ctx context.Context) error { return k.conn.Ping(ctx) }

// Close implements gateway.Sink with the close codes of openapi.yaml.
func (k *wsSink) Close(why gateway.CloseReason, detail string) {
	code := websocket.StatusInternalError
	switch why {
	case gateway.CloseAbort:
		_ = k.conn.CloseNow()
		return
	case gateway.CloseShutdown:
		code = websocket.StatusGoingAway
	case gateway.CloseSlow, gateway.CloseExpired:
		code = websocket.StatusPolicyViolation
	}
	_ = k.conn.Close(code, detail)
}

// serveSSE serves st as Server-Sent Events on the response itself.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, st *gateway.Stream) {
	rc := http.NewResponseController(w)
	// A server ReadTimeout would end the request (and cancel its context)
	// while the stream is still healthy: this request has no body to read.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering
	w.WriteHeader(http.StatusOK)
	err := st.Serve(r.Context(), &sseSink{w: w, rc: rc})
	s.cfg.Logger.Debug("sse stream ended", "remote", r.RemoteAddr, "err", err)
}

// sseRetryAfter is the reconnection delay an SSE client is told when the
// gateway is shutting down.
const sseRetryAfter = 3 * time.Second

// sseRetryLater answers an SSE request that comes during shutdown so
// that EventSource tries again: by its spec any status but 200 ends it
// for good, so this is a 200 event stream holding only a retry: delay,
// and it ends at once (clients resume with Last-Event-ID as usual).
func sseRetryLater(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, ": the gateway cannot serve this stream now; reconnect\nretry: %d\n\n", sseRetryAfter.Milliseconds())
}

// parseEventID reads a Last-Event-ID: "<epoch>-<seq>" as the stream sends
// them (the epoch itself may hold '-'), or a bare seq.
func parseEventID(id string) (epoch string, seq uint64, err error) {
	id = strings.TrimSpace(id)
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		epoch, id = id[:i], id[i+1:]
		if epoch == "" {
			return "", 0, errors.New("empty epoch")
		}
	}
	seq, err = strconv.ParseUint(id, 10, 64)
	return epoch, seq, err
}

// sseSink writes a stream as Server-Sent Events: one SSE message per event
// (id: <epoch>-<seq>, so that a resume into another log gets a reset),
// all that is ready in one write and flush.
type sseSink struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	epoch string // the log's, from the hello (or reset) line
}

// Send implements gateway.Sink: the events' JSON is written from the
// shared record bytes (see msgPieces).
func (k *sseSink) Send(ctx context.Context, meta []gateway.Meta, recs []store.Record) (int, error) {
	err := k.write(ctx, func(w io.Writer) error {
		m := newMsgPieces(func() (io.Writer, error) { return w, nil })
		for _, x := range meta {
			if x.Kind == gateway.MetaHello || x.Kind == gateway.MetaReset {
				k.epoch = x.Bounds.Epoch
			}
			m.appendPiece(func(b []byte) []byte {
				b = append(b, "event: "...)
				b = append(b, x.Kind.String()...)
				b = append(b, "\ndata: "...)
				return append(x.AppendJSON(b), "\n\n"...)
			})
		}
		for i := range recs {
			b := append(m.room(len("id: -\ndata: 18446744073709551615")+len(k.epoch)), "id: "...)
			if k.epoch != "" {
				b = append(append(b, k.epoch...), '-')
			}
			m.buf = append(strconv.AppendUint(b, recs[i].Seq, 10), "\ndata: "...)
			m.write(recs[i].JSON)
			m.write(sseEnd)
		}
		return m.finish(nil, nil)
	})
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// write runs put on the response and flushes it, within ctx: its deadline
// becomes the write deadline, and its end aborts a write in progress.
func (k *sseSink) write(ctx context.Context, put func(io.Writer) error) error {
	deadline, _ := ctx.Deadline()
	if err := k.rc.SetWriteDeadline(deadline); err != nil {
		return err
	}
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = k.rc.SetWriteDeadline(time.Now())
		close(aborted)
	})
	err := put(k.w)
	if err == nil {
		err = k.rc.Flush()
	}
	if !stop() {
		<-aborted // the deadline is set to now: keep it from leaking into the next write
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// writeBytes is write for one piece.
func (k *sseSink) writeBytes(ctx context.Context, b []byte) error {
	return k.write(ctx, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// Ping implements gateway.Sink with a comment line: a dead peer makes the
// write fail.
func (k *sseSink) Ping(ctx context.Context) error {
	return k.writeBytes(ctx, []byte(": keep-alive\n\n"))
}

// Close implements gateway.Sink: SSE has no close frame, the response
// simply ends; a comment says why, for people reading the stream.
// An expired token's stream ends with an `event: error` message whose
// data is {"error":"token_expired","detail":"token expired; last seq N"}.
func (k *sseSink) Close(why gateway.CloseReason, detail string) {
	if why == gateway.CloseAbort || detail == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	msg := ": " + detail + "\n\n"
	if why == gateway.CloseExpired {
		msg = `event: error` + "\n" + `data: {"error":"token_expired","detail":` + strconv.Quote(detail) + "}\n\n"
	}
	_ = k.writeBytes(ctx, []byte(msg))
}

// headerHasToken reports whether the comma-separated header name holds
// token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptsEventStream reports whether Accept names text/event-stream.
func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for t := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

var errNotEvent = errors.New("stored record is not an event")
