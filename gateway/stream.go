package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventgate/eventgate/store"
)

// CloseReason says why the hub ends a stream.
type CloseReason uint8

// Reasons for Sink.Close.
const (
	// CloseShutdown: the gateway is shutting down, after everything up to
	// the last accepted event was sent (WebSocket 1001).
	CloseShutdown CloseReason = iota + 1
	// CloseSlow: the client lagged more than the queue bound (1008).
	CloseSlow
	// CloseError: the store failed (1011).
	CloseError
	// CloseAbort: the peer is unresponsive, the transport failed or the hub
	// force-closes: drop the connection without a closing handshake.
	CloseAbort
	// CloseExpired: the subscription's Expires passed (1008); the detail
	// is "<ExpireReason>; last seq N", everything up to N having been sent.
	CloseExpired
)

// Sink is one client's transport: a WebSocket, an SSE response. The hub
// calls a Sink only from the goroutine running Stream.Serve, one method at
// a time, so implementations need no locking.
type Sink interface {
	// Send writes meta (in order) then recs (in seq order) to the client
	// as one or more transport messages and returns how many it wrote.
	// recs' JSON is shared and must not be modified. Send must give up
	// when ctx ends (it carries the write deadline and is cancelled when
	// the hub force-closes); after an error the hub calls Close and stops.
	Send(ctx context.Context, meta []Meta, recs []store.Record) (messages int, err error)
	// Ping checks that the peer is alive, within ctx.
	Ping(ctx context.Context) error
	// Close ends the stream for why; detail is for people (the WebSocket
	// close reason, at most 123 bytes). Close is the last call.
	Close(why CloseReason, detail string)
}

// Stream is one client of a Hub, from Open to the end of Serve.
type Stream struct {
	h        *Hub
	sub      Subscription
	m        transportMetrics
	released bool

	// Serving state, used only by the goroutine running serve.
	cursor   uint64 // the last seq sent, or skipped by the filter
	start    uint64 // newest when the client connected
	meta     []Meta // lines to send before the next events
	flushing bool   // Shutdown has begun: send up to flushTo, then close
	flushTo  uint64
	woken    bool  // the last wait ended on the log's wake-up
	lastSend int64 // when the last Send ended (unix nanos): see serve's linger
	// busy: the stream sent more than busyEvents events per Linger over
	// its last rate window, which began at rateStart (unix nanos) and has
	// counted rateEvents so far. Only a busy stream lingers.
	busy       bool
	rateStart  int64
	rateEvents int
	wd         writeDeadline // bounds each Send
}

// Release unregisters a Stream that will not be served (e.g. the WebSocket
// upgrade failed). Serve releases on its own; calling Release after it, or
// twice, does nothing. Not safe for concurrent use with Serve.
func (s *Stream) Release() {
	if !s.released {
		s.released = true
		s.h.release()
	}
}

// Serve runs the client until it ends, in the caller's goroutine, the only
// one that uses sink, and returns why it ended: nil after a shutdown
// flush, ErrSlowConsumer, ErrExpired, ctx.Err() when the peer went away (the caller
// cancels ctx) or the hub force-closed, or a transport or store error.
//
// The client is a cursor over the log. First it sends the hello line (and
// reset or gap lines when they apply); then, again and again, it reads what
// is ready after its cursor (replayed or live: the same read), sends it as
// one Send, and waits on the log only when it has caught up.
//
// Lag: events stored since the client connected that remain unsent after
// the message being sent now, counted in log positions (events that its
// filter skips count too, until its cursor passes them):
//
//	lag = newest - max(cursor after this send, newest when it connected)
//
// So a burst larger than Queue does not cut off a client that takes it in
// one message, and a filtered client is never behind on events it skips.
//
// So a client resuming from far back may replay the whole buffer at its own
// pace, and only what arrives while it is connected counts against
// HubConfig.Queue. The same lag counted in bytes (what those events hold,
// when the log counts bytes) is bounded by HubConfig.QueueBytes. When lag
// passes either bound (checked before every send) the client is closed
// with CloseSlow and a reason naming its cursor: every
// matching event up to that seq was sent, so it can resume with after=seq.
// A subscription with Expires is closed with CloseExpired when that time
// comes (checked while waiting, and before every read while catching up),
// with the same "last seq" in its reason.
//
// A client whose socket is full is noticed when its blocked write finishes
// or times out (HubConfig.WriteTimeout).
func (s *Stream) Serve(ctx context.Context, sink Sink) error {
	defer s.Release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopForce := context.AfterFunc(s.h.force, cancel)
	defer stopForce()
	return s.serve(ctx, sink)
}

// Go is Serve in a new goroutine that the hub owns (Run waits for it),
// for a transport that need not keep its caller's goroutine, such as a
// hijacked WebSocket: the HTTP handler returns and its stack and request
// state are freed, which keeps an idle connection small. Instead of a
// context to cancel, it returns stop: calling it ends the stream as the end
// of Serve's ctx does (the peer went away). stop is safe for concurrent use
// and may be called more than once, also after the stream ended. done,
// when set, runs in that goroutine after Serve, with Serve's result,
// before the hub forgets the stream: the transport's cleanup belongs
// there. The caller's later Release does nothing.
func (s *Stream) Go(sink Sink, done func(error)) (stop func()) {
	s.released = true // the goroutine releases
	// A child of force: no AfterFunc to register per stream.
	ctx, cancel := context.WithCancel(s.h.force)
	go func() {
		defer s.h.release()
		err := s.serve(ctx, sink)
		cancel()
		if done != nil {
			done(err)
		}
	}()
	return cancel
}

// serve is split so that an idle stream parks with a shallow stack: this
// loop, small, waits; sendReady, whose frame is large, reads and sends and
// returns before the wait. The GC halves a parked goroutine's stack only
// while less than a quarter of it is used, so an idle stream's stack ends at
// 4 KiB instead of 8 (BenchmarkIdleConnMemory). Keep the waiting here and
// the work out of it.
//
// ctx must end when the hub force-closes (h.force ends), and its end must
// abort a Send in progress.
func (s *Stream) serve(ctx context.Context, sink Sink) error {
	h := s.h
	s.m.clients.Inc()
	defer s.m.clients.Dec()

	s.open()
	closing := h.closing // nil once seen
	ping := time.NewTimer(h.cfg.PingInterval)
	defer ping.Stop()
	var expire <-chan time.Time // nil: never
	if !s.sub.Expires.IsZero() {
		t := time.NewTimer(time.Until(s.sub.Expires))
		defer t.Stop()
		expire = t.C
	}
	var linger *time.Timer // made when first needed
	defer func() {
		if linger != nil {
			linger.Stop()
		}
		s.wd.stop()
	}()
	for {
		if done, err := s.sendReady(ctx, sink); done {
			return err
		}
		// Adaptive batching: a stream writes as soon as it has something;
		// what arrives meanwhile goes in its next message. Only a busy one
		// (see sent) that sent less than Linger ago waits out the rest of
		// Linger, before it looks at the log: heavy traffic goes in few,
		// large messages, one wake-up each; light traffic is never held.
		if s.busy && closing != nil {
			if wait := h.cfg.Linger - time.Duration(time.Now().UnixNano()-s.lastSend); wait > 0 {
				if linger == nil {
					linger = time.NewTimer(wait)
				} else {
					linger.Reset(wait)
				}
				select {
				case <-linger.C:
				case <-closing: // flush at once: the wait below sees closing too
				case <-ctx.Done(): // likewise
				}
			}
		}
		select {
		case <-h.log.Wait(s.cursor):
			s.woken = true
		case <-closing:
			closing, s.flushing, s.flushTo = nil, true, h.log.Bounds().Newest
		case <-ping.C:
			s.wd.stop() // an idle stream keeps no write timer; a busy one makes another
			if err := s.ping(ctx, sink); err != nil {
				return err
			}
			ping.Reset(h.cfg.PingInterval)
		case <-expire:
			return s.expire(sink)
		case <-ctx.Done():
			return s.end(sink, CloseAbort, h.goneReason(), ctx.Err(), "")
		}
	}
}

// busyEvents is how many events a stream may send per Linger and still
// count as light traffic (3,200 events/s at the default 5 ms): below it,
// every message goes out at once; above it, the stream lingers (serve).
const busyEvents = 16

// sent records a Send of n events that ended at now (unix nanos) for the
// linger: when the stream last sent, and whether it is busy, judged once
// per rate window of at least Linger.
func (s *Stream) sent(n int, now int64) {
	s.lastSend = now
	s.rateEvents += n
	linger := int64(s.h.cfg.Linger)
	if linger <= 0 {
		return // never lingers
	}
	if el := now - s.rateStart; el >= linger {
		el = min(el, int64(time.Hour)) // no overflow below (the first window starts at 0)
		s.busy = int64(s.rateEvents)*linger > busyEvents*el
		s.rateStart, s.rateEvents = now, 0
	}
}

// open sets the stream's cursor and its first lines: hello, and reset when
// a resume cannot be honoured.
func (s *Stream) open() {
	b := s.h.log.Bounds()
	s.meta = append(make([]Meta, 0, 2), Meta{Kind: MetaHello, Bounds: b})
	s.cursor, s.start = b.Newest, b.Newest
	if s.sub.Resume {
		if (s.sub.Epoch != "" && s.sub.Epoch != b.Epoch) || s.sub.After > b.Newest {
			s.meta = append(s.meta, Meta{Kind: MetaReset, Bounds: b})
			s.cursor = max(b.Oldest, 1) - 1
		} else {
			s.cursor = s.sub.After
		}
	}
	s.h.cfg.Logger.Debug("stream opened", "transport", s.sub.Transport, "remote", s.sub.Remote,
		"types", s.sub.Filter.Strings(), "cursor", s.cursor, "newest", b.Newest)
}

// sendReady sends everything ready after the cursor, one Send per read,
// until the cursor has caught up with the log. It returns done when the
// stream has ended (Close called), with Serve's result.
//
//go:noinline
func (s *Stream) sendReady(ctx context.Context, sink Sink) (done bool, _ error) {
	h := s.h
	for {
		if ctx.Err() != nil { // forced or gone, even if the log's Read would not say so
			return true, s.end(sink, CloseAbort, h.goneReason(), ctx.Err(), "")
		}
		if !s.sub.Expires.IsZero() && !time.Now().Before(s.sub.Expires) {
			return true, s.expire(sink) // a long catch-up ends on time too
		}
		bp := batches.Get().(*[]store.Record)
		page, err := h.log.Read(ctx, s.cursor, h.cfg.MaxBatch, s.sub.Filter, (*bp)[:0])
		putBatch := func() {
			clear(page.Records) // do not keep overwritten events' bytes alive
			*bp = page.Records[:0]
			batches.Put(bp)
		}
		if err != nil {
			putBatch()
			if ctx.Err() != nil {
				return true, s.end(sink, CloseAbort, h.goneReason(), ctx.Err(), "")
			}
			return true, s.end(sink, CloseError, "store_error", fmt.Errorf("read log: %w", err), "store error; resume with after")
		}
		if s.woken && page.Newest <= s.cursor {
			// Woken with nothing new: the log was closed under us, or a
			// shared log woke its readers for events at or below this
			// cursor (a reader can be ahead of what its wake-ups report).
			s.woken = false
			putBatch()
			if h.log.Wait(s.cursor) == store.Ready && h.log.Bounds().Newest <= s.cursor {
				return true, s.end(sink, CloseShutdown, "shutdown", nil, "gateway shutting down")
			}
			return false, nil
		}
		s.woken = false
		if page.Gap != nil {
			s.meta = append(s.meta, Meta{Kind: MetaGap, Gap: *page.Gap})
		}
		recs, next, newest := page.Records, page.Next, page.Newest
		if s.flushing && newest > s.flushTo {
			// The log grew after the stream saw the shutdown (another
			// gateway sharing it goes on ingesting): send up to what newest
			// was then, no further; what came after is not behind.
			for len(recs) > 0 && recs[len(recs)-1].Seq > s.flushTo {
				recs = recs[:len(recs)-1]
			}
			next, newest = min(next, s.flushTo), s.flushTo
		}
		if n, size := 0, 0; len(recs) > 1 {
			for n < len(recs) && (n == 0 || size+len(recs[n].JSON) <= h.cfg.MaxMessageBytes) {
				size += len(recs[n].JSON)
				n++
			}
			if n < len(recs) {
				recs, next = recs[:n], recs[n-1].Seq
			}
		}

		// What this send takes is not lag: only what remains behind it.
		lag := satSub(newest, max(next, s.start))
		if lag > uint64(h.cfg.Queue) {
			putBatch()
			return true, s.cutSlow(sink, lag, 0)
		}
		if lb := h.lagBytes(max(next, s.start), newest); lb > h.cfg.QueueBytes {
			putBatch()
			return true, s.cutSlow(sink, lag, lb)
		}

		if len(s.meta) > 0 || len(recs) > 0 {
			// Events go under the reusable deadline; meta lines alone (the
			// hello) get a context of their own, so that an idle stream
			// keeps no timer (serve drops it at each ping too).
			var msgs int
			var err error
			var timedOut bool
			if len(recs) > 0 {
				msgs, err = sink.Send(s.wd.start(ctx, h.cfg.WriteTimeout), s.meta, recs)
				timedOut = s.wd.done()
			} else {
				wctx, wcancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
				msgs, err = sink.Send(wctx, s.meta, recs)
				wcancel()
			}
			s.sent(len(recs), time.Now().UnixNano())
			putBatch()
			if err != nil {
				if ctx.Err() != nil {
					return true, s.end(sink, CloseAbort, h.goneReason(), ctx.Err(), "")
				}
				// A write that timed out while the backlog passed the bound:
				// the client stopped reading. It is a slow consumer (1008,
				// counted, recorded), not merely a broken connection.
				newest := h.log.Bounds().Newest
				if s.flushing {
					newest = min(newest, s.flushTo) // what came after is not behind
				}
				if timedOut || errors.Is(err, context.DeadlineExceeded) {
					base := max(s.cursor, s.start)
					lag := satSub(newest, base)
					if lb := h.lagBytes(base, newest); lag > uint64(h.cfg.Queue) || lb > h.cfg.QueueBytes {
						return true, s.cutSlow(sink, lag, lb)
					}
				}
				return true, s.end(sink, CloseAbort, "write_error", fmt.Errorf("send: %w", err), "")
			}
			s.m.messages.Add(float64(msgs))
			s.m.events.Add(float64(len(recs)))
			h.metrics.lag.Observe(float64(lag))
			s.meta = nil // meta lines are rare after hello: an idle stream keeps no array
		} else {
			putBatch()
		}
		s.cursor = next

		if s.cursor < newest {
			continue // more is ready: no need to wait
		}
		if s.flushing && s.cursor >= s.flushTo {
			return true, s.end(sink, CloseShutdown, "shutdown", nil, "gateway shutting down")
		}
		return false, nil
	}
}

// ping checks the peer with sink.Ping; on failure it ends the stream and
// returns Serve's result.
//
//go:noinline
func (s *Stream) ping(ctx context.Context, sink Sink) error {
	pctx, pcancel := context.WithTimeout(ctx, s.h.cfg.PongTimeout)
	err := sink.Ping(pctx)
	pcancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return s.end(sink, CloseAbort, s.h.goneReason(), ctx.Err(), "")
	}
	return s.end(sink, CloseAbort, "ping_timeout", fmt.Errorf("ping: %w", err), "")
}

// cutSlow ends a client that fell more than Queue events (lag) or
// QueueBytes bytes (lagBytes, when known) behind.
func (s *Stream) cutSlow(sink Sink, lag uint64, lagBytes int64) error {
	h := s.h
	s.m.slow.Inc()
	h.cfg.Logger.Warn("slow stream client cut off", "transport", s.sub.Transport, "remote", s.sub.Remote,
		"last_seq", s.cursor, "lag", lag, "queue", h.cfg.Queue, "lag_bytes", lagBytes, "queue_bytes", h.cfg.QueueBytes)
	// Recorded before the close, whose handshake may wait seconds for a
	// peer that is not reading.
	if h.cfg.OnDrop != nil {
		h.cfg.OnDrop(Drop{Transport: s.sub.Transport, Remote: s.sub.Remote, Types: s.sub.Filter.Strings(),
			LastSeq: s.cursor, Lag: lag, Queue: h.cfg.Queue})
	}
	return s.end(sink, CloseSlow, "slow", ErrSlowConsumer, fmt.Sprintf("slow consumer: last seq %d", s.cursor))
}

// expire ends a client whose Subscription.Expires has passed.
func (s *Stream) expire(sink Sink) error {
	reason := s.sub.ExpireReason
	if reason == "" {
		reason = "subscription expired"
	}
	return s.end(sink, CloseExpired, "expired", ErrExpired, fmt.Sprintf("%s; last seq %d", reason, s.cursor))
}

// end closes sink for why, counts and logs it, and returns err.
func (s *Stream) end(sink Sink, why CloseReason, reason string, err error, detail string) error {
	sink.Close(why, detail)
	s.m.closes(reason).Inc()
	s.h.cfg.Logger.Debug("stream closed", "transport", s.sub.Transport, "remote", s.sub.Remote,
		"reason", reason, "cursor", s.cursor, "err", err)
	return err
}
