package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Kind says what a StreamEvent reports.
type Kind uint8

// The kinds of StreamEvent.
const (
	// KindEvent: an event (StreamEvent.Event), in seq order.
	KindEvent Kind = iota + 1
	// KindGap: events StreamEvent.Gap.From to .To were overwritten in the
	// gateway's buffer before this client could get them. They are lost
	// to this stream; events continue after Gap.To.
	KindGap
	// KindReset: the position the stream resumed from does not exist in
	// the gateway's log (it restarted with a new ring buffer, so seqs
	// started again; or the position is beyond the newest event).
	// StreamEvent.Reset describes the new log; events continue from its
	// oldest buffered one. Seqs before and after a reset are not
	// comparable: anything keyed by seq must start again.
	KindReset
	// KindSlowConsumer: the gateway cut this client off (WebSocket close
	// 1008) because it fell more than --stream-queue events behind.
	// Nothing was lost: the client resumes after StreamEvent.LastSeq at
	// once. Frequent ones mean the loop body is too slow for the rate of
	// events.
	KindSlowConsumer
	// KindDisconnected: the connection ended (StreamEvent.Err says why:
	// the gateway shutting down, close 1001, or a network error). The
	// client reconnects with backoff and resumes where it stopped.
	KindDisconnected
)

// String returns "event", "gap", "reset", "slow-consumer" or
// "disconnected".
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindGap:
		return "gap"
	case KindReset:
		return "reset"
	case KindSlowConsumer:
		return "slow-consumer"
	case KindDisconnected:
		return "disconnected"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Cursor is a position in one lifetime of the gateway's log: after Seq,
// in Epoch. Save StreamEvent.Cursor to resume a subscription later with
// SubscribeOptions.From.
type Cursor struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Position describes a log: its epoch and its oldest and newest buffered
// seqs (0 when empty).
type Position struct {
	Epoch  string `json:"epoch"`
	Oldest uint64 `json:"oldest"`
	Newest uint64 `json:"newest"`
}

// StreamEvent is one item of a subscription. Kind says which field is set.
type StreamEvent struct {
	Kind    Kind
	Event   Event    // KindEvent
	Gap     Gap      // KindGap
	Reset   Position // KindReset: the log the stream now reads
	LastSeq uint64   // KindSlowConsumer: every matching event up to this seq was sent
	Err     error    // KindSlowConsumer, KindDisconnected: why the connection ended
	// Cursor is where the stream stands after this item: a resume with
	// SubscribeOptions.From = Cursor continues with no gap and no
	// duplicate (while the events are still buffered).
	Cursor Cursor
}

// SubscribeOptions configures Subscribe. The zero value follows every
// event from now on.
type SubscribeOptions struct {
	// Types are type patterns ("order.*", "billing.>"); none means all.
	Types []string
	// From, when set, starts after From.Seq: buffered events are
	// replayed, then the stream goes live. If From.Epoch is set and is
	// not the gateway's, the stream starts with a KindReset. Nil starts
	// live, with the first event stored after connecting.
	From *Cursor
	// MinBackoff and MaxBackoff bound the jittered exponential wait
	// between reconnection attempts; defaults 100ms and 10s. A
	// connection that had opened resets the backoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts, when positive, ends the subscription with the last
	// error after that many consecutive failed connection attempts.
	// Zero: keep trying until ctx ends.
	MaxAttempts int
}

// Subscribe follows the gateway's live stream (GET /v1/stream over
// WebSocket) and yields its events in seq order, resuming by itself,
// with no gap and no duplicate, across disconnects, slow-consumer
// cut-offs and gateway restarts.
//
// After a disconnect it reconnects with backoff and asks for the events
// after the last one it yielded, in the same epoch. What it cannot hide is
// handed to the caller as a StreamEvent of its own kind: KindGap (events
// lost to buffer overwrite), KindReset (a new log: the gateway restarted),
// KindSlowConsumer and KindDisconnected (informational: the stream goes
// on). Callers that only want events skip the other kinds, but should at
// least log KindGap and KindReset.
//
// The sequence ends, after yielding a non-nil error with a zero
// StreamEvent, when ctx ends (ctx.Err()), when the gateway refuses the
// subscription for good (an *Error: 400 bad types, 401 bad key), or after
// MaxAttempts failed connection attempts. Breaking out of the loop closes
// the connection. Subscribe starts no goroutine: everything runs in the
// loop's goroutine, so the loop body should not block for long (the
// gateway drops a client that leaves its ping unanswered for about 40s;
// it then resumes, losing nothing).
func (c *Client) Subscribe(ctx context.Context, o SubscribeOptions) iter.Seq2[StreamEvent, error] {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	return func(yield func(StreamEvent, error) bool) {
		s := &subscription{c: c, o: o}
		if o.From != nil {
			s.cur, s.placed = *o.From, true
		}
		s.run(ctx, yield)
	}
}

// subscription is one Subscribe loop's state.
type subscription struct {
	c      *Client
	o      SubscribeOptions
	cur    Cursor // last seq yielded (or skipped, or the live start) and its epoch
	placed bool   // cur is a real position: resume with after=cur.Seq
}

// errStop says the consumer broke out of the loop.
var errStop = errors.New("stop")

func (s *subscription) run(ctx context.Context, yield func(StreamEvent, error) bool) {
	failures := 0
	var last error
	for {
		if failures > 0 {
			if s.o.MaxAttempts > 0 && failures >= s.o.MaxAttempts {
				yield(StreamEvent{}, fmt.Errorf("eventgate: subscribe: %d attempts failed: %w", failures, last))
				return
			}
			wait := backoff(s.o.MinBackoff, s.o.MaxBackoff, failures)
			var apiErr *Error
			if errors.As(last, &apiErr) && apiErr.RetryAfter > wait {
				wait = min(apiErr.RetryAfter, s.o.MaxBackoff)
			}
			if !sleep(ctx, wait) {
				yield(StreamEvent{}, ctx.Err())
				return
			}
		}
		conn, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				yield(StreamEvent{}, ctx.Err())
				return
			}
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.StatusCode != http.StatusTooManyRequests && apiErr.StatusCode < 500 {
				yield(StreamEvent{}, err) // refused for good
				return
			}
			failures, last = failures+1, err
			continue
		}
		opened, err := s.read(ctx, conn, yield)
		if errors.Is(err, errStop) {
			_ = conn.Close(websocket.StatusNormalClosure, "")
			return
		}
		_ = conn.CloseNow()
		if ctx.Err() != nil {
			yield(StreamEvent{}, ctx.Err())
			return
		}
		ev := StreamEvent{Kind: KindDisconnected, Err: err}
		if ce := (websocket.CloseError{}); errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation {
			if n, ok := strings.CutPrefix(ce.Reason, "slow consumer: last seq "); ok {
				if seq, perr := strconv.ParseUint(n, 10, 64); perr == nil {
					ev.Kind, ev.LastSeq = KindSlowConsumer, seq
					s.cur.Seq, s.placed = max(s.cur.Seq, seq), true
				}
			}
		}
		ev.Cursor = s.cur
		if !yield(ev, nil) {
			return
		}
		if opened {
			failures = 0
		}
		failures, last = failures+1, err
	}
}

// dial opens one WebSocket to /v1/stream from the current position.
func (s *subscription) dial(ctx context.Context) (*websocket.Conn, error) {
	q := url.Values{}
	if len(s.o.Types) > 0 {
		q.Set("types", strings.Join(s.o.Types, ","))
	}
	if s.placed {
		q.Set("after", strconv.FormatUint(s.cur.Seq, 10))
		if s.cur.Epoch != "" {
			q.Set("epoch", s.cur.Epoch)
		}
	}
	u := s.c.url("/v1/stream", q)
	u = "ws" + strings.TrimPrefix(u, "http") // http→ws, https→wss
	h := http.Header{}
	s.c.setHeaders(h)
	h.Del("Accept")
	hc := s.c.hc
	if hc.Timeout > 0 { // it would cut the stream; the handshake gets ctx's bound below
		cp := *hc
		cp.Timeout = 0
		hc = &cp
	}
	dctx, cancel := context.WithTimeout(ctx, s.c.timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, readError(resp)
		}
		return nil, fmt.Errorf("eventgate: open stream: %w", err)
	}
	conn.SetReadLimit(s.c.readSize)
	return conn, nil
}

// read yields what conn brings until it ends. It returns whether the
// stream had opened (a hello line came) and why it ended: errStop when
// the consumer stopped.
func (s *subscription) read(ctx context.Context, conn *websocket.Conn, yield func(StreamEvent, error) bool) (opened bool, err error) {
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			return opened, err
		}
		if typ != websocket.MessageText {
			continue
		}
		for len(msg) > 0 {
			var line []byte
			line, msg, _ = bytes.Cut(msg, []byte{'\n'})
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			ev, ok, err := s.line(line)
			if err != nil {
				return opened, err
			}
			opened = true
			if ok && !yield(ev, nil) {
				return opened, errStop
			}
		}
	}
}

// metaLine is a stream line that is not an event.
type metaLine struct {
	Hello *Position `json:"hello"`
	Gap   *Gap      `json:"gap"`
	Reset *Position `json:"reset"`
}

// line parses one NDJSON line and moves the cursor. ok is false for lines
// that are not for the caller (hello, events already yielded).
func (s *subscription) line(b []byte) (ev StreamEvent, ok bool, err error) {
	var m metaLine
	if bytes.HasPrefix(b, []byte(`{"hello"`)) || bytes.HasPrefix(b, []byte(`{"gap"`)) || bytes.HasPrefix(b, []byte(`{"reset"`)) {
		if err := json.Unmarshal(b, &m); err != nil {
			return ev, false, fmt.Errorf("eventgate: stream line: %w", err)
		}
	} else {
		if err := json.Unmarshal(b, &ev.Event); err != nil {
			return ev, false, fmt.Errorf("eventgate: stream line: %w", err)
		}
		if ev.Event.Seq == 0 { // not an event after all
			if err := json.Unmarshal(b, &m); err != nil || (m.Hello == nil && m.Gap == nil && m.Reset == nil) {
				return ev, false, fmt.Errorf("eventgate: stream line without seq: %.80s", b)
			}
			ev.Event = Event{}
		}
	}
	switch {
	case m.Hello != nil:
		if s.cur.Epoch == "" {
			s.cur.Epoch = m.Hello.Epoch
		}
		if !s.placed { // a live start: the stream starts after newest
			s.cur, s.placed = Cursor{Epoch: m.Hello.Epoch, Seq: m.Hello.Newest}, true
		}
		return ev, false, nil
	case m.Reset != nil:
		s.cur, s.placed = Cursor{Epoch: m.Reset.Epoch, Seq: max(m.Reset.Oldest, 1) - 1}, true
		return StreamEvent{Kind: KindReset, Reset: *m.Reset, Cursor: s.cur}, true, nil
	case m.Gap != nil:
		s.cur.Seq = max(s.cur.Seq, m.Gap.To)
		return StreamEvent{Kind: KindGap, Gap: *m.Gap, Cursor: s.cur}, true, nil
	}
	if ev.Event.Seq <= s.cur.Seq { // never yield a seq twice
		return ev, false, nil
	}
	s.cur.Seq = ev.Event.Seq
	ev.Kind, ev.Cursor = KindEvent, s.cur
	return ev, true, nil
}
