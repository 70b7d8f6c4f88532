package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// attemptJob is everything one attempt needs, copied out of the endpoint
// so that the attempt worker shares nothing mutable with it.
type attemptJob struct {
	dl      *delivery // opaque here: handed back in the result
	manual  bool
	direct  bool // the worker books the result itself (see settle)
	url     string
	secrets []signature.Secret
	headers map[string]string // custom headers; read-only
	msgID   string
	body    []byte // the stored event JSON; immutable
}

// workerIdle is how long an attempt worker waits for work before it
// exits. Long enough that a steady stream of events (one every second or
// two will do) keeps the workers, and their grown stacks, alive; short
// enough that an endpoint that went quiet soon holds no goroutines (the
// soak test expects the idle gateway's goroutine count back within 10 s).
const workerIdle = 2 * time.Second

// submitLocked queues j for the endpoint's attempt workers and starts one
// more worker when fewer are running than attempts are in flight (so no
// attempt waits for a worker while another attempt runs). Called with mu
// held, after counting j in inFlight, by the endpoint goroutine or by a
// worker chaining a queue's prefetch (it counts in workerWG, so run
// cannot be waiting for a zero count).
//
// jobs has room for Concurrency attempts and inFlight, which counts every
// queued one, never exceeds Concurrency, so the send does not block. Were
// the slot accounting ever to let it fill, the attempt runs on a goroutine
// of its own: the endpoint goroutine never blocks, and no attempt is
// dropped.
func (e *endpoint) submitLocked(j attemptJob) {
	select {
	case e.jobs <- j:
	default:
		e.workerWG.Go(func() { e.settle(j.direct, e.d.attempt(e.ctx, j)) })
		return
	}
	if e.workers < min(e.inFlight, e.d.cfg.Concurrency) {
		e.workers++
		e.workerWG.Go(e.work)
	}
}

// settle books an attempt's result. A direct attempt (launched alone, on
// a source that settles without I/O: moderate rates) is booked by its
// worker (finish), which wakes the endpoint goroutine only when that gives
// it work: no hand-off per delivery. On a queue source (chain) every
// attempt is booked by its worker, which settles it with the queue and
// starts the next prefetched delivery itself (measured on embedded NATS,
// draining a backlog: +11% over handing each result to the endpoint
// goroutine, whose turn on a busy CPU held the slots up); the endpoint
// goroutine is poked only when that leaves it work (needsRunLocked, or
// the queue's needsEndpointLocked: a pull to make, states to write).
// Otherwise (the log's cursor at high rates) the result goes to the
// endpoint goroutine: attempts that overlap are booked together before
// the endpoint reads the log once for the slots they free, with no worker
// contending for the endpoint's mutex. Once the endpoint has stopped, the
// result is left unbooked, as report leaves it; a handshake's result
// always goes to the endpoint goroutine.
func (e *endpoint) settle(direct bool, r result) {
	if e.ctx.Err() != nil || r.hs != nil || (!direct && !e.chain) {
		e.report(r)
		return
	}
	if e.chain {
		wake := e.finish(r)
		qs := e.src.(*queueSource)
		e.mu.Lock()
		settles := qs.chainLocked(time.Now())
		wake = wake || qs.needsEndpointLocked()
		e.mu.Unlock()
		qs.settle(settles)
		if wake {
			e.poke()
		}
		return
	}
	if e.finish(r) {
		e.poke()
	}
}

// work is an attempt worker: it makes the attempts queued on jobs, one at
// a time, and settles each. It exits when the endpoint stops,
// or after workerIdle without work; it checks, under mu, that no attempt
// was queued meanwhile counting on it (submitLocked starts another worker
// once it has gone).
func (e *endpoint) work() {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case j := <-e.jobs:
			e.settle(j.direct, e.d.attempt(e.ctx, j))
			idle.Reset(workerIdle)
		case <-idle.C:
			e.mu.Lock()
			if len(e.jobs) == 0 {
				e.workers--
				e.mu.Unlock()
				return
			}
			e.mu.Unlock()
			idle.Reset(workerIdle)
		case <-e.ctx.Done():
			e.mu.Lock()
			e.workers--
			e.mu.Unlock()
			return
		}
	}
}

// attemptHeader returns an attempt's request header: the webhook's custom
// headers, then Content-Type, User-Agent and the three Standard Webhooks
// headers signed at start.
func attemptHeader(j attemptJob, start time.Time) http.Header {
	h := make(http.Header, 5+len(j.headers))
	for k, v := range j.headers { // validated: none is one the gateway sets
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "eventgate")
	signature.SetHeaders(h, j.secrets, j.msgID, start, j.body)
	return h
}

// attempt makes one delivery attempt on the dispatcher's lifecycle
// context, bounded by the per-attempt timeout: POST the event, signed
// afresh with this attempt's timestamp.
func (d *Dispatcher) attempt(ctx context.Context, j attemptJob) result {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	r := result{dl: j.dl, manual: j.manual, start: time.Now()}
	// A *bytes.Reader body: net/http knows its length, can re-send it on a
	// keep-alive connection that died, and writes the headers and the
	// body in one syscall.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		r.err = err
		return r
	}
	req.Header = attemptHeader(j, r.start)
	resp, err := d.client.Do(req)
	if err != nil {
		r.err, r.dur = err, time.Since(r.start)
		return r
	}
	r.status, r.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	r.contentType = resp.Header.Get("Content-Type")
	if resp.Body != http.NoBody { // kept for last_error and the attempt history
		r.body, _ = io.ReadAll(io.LimitReader(resp.Body, respKeep))
	}
	// Drain a little so the connection can be reused; a longer body is
	// cut off by Close, which costs the connection, not the endpoint. (No
	// body at all, as with 204, is NoBody: nothing to drain.)
	if resp.Body != http.NoBody {
		_, _ = io.CopyN(io.Discard, resp.Body, respDrain)
	}
	_ = resp.Body.Close()
	r.dur = time.Since(r.start)
	return r
}

// classify names an attempt's outcome and, for a failure, the last_error
// text.
func classify(r result, timeout time.Duration) (outcome, msg string) {
	switch {
	case r.err != nil && errors.Is(r.err, context.DeadlineExceeded):
		return outcomeTimeout, fmt.Sprintf("timeout: no answer within %s (--delivery-timeout)", timeout)
	case r.err != nil && errors.Is(r.err, context.Canceled):
		return outcomeCanceled, "cancelled: the gateway stopped the attempt"
	case r.err != nil && errors.Is(r.err, ErrPrivateTarget):
		return outcomeConnError, "connection refused by the gateway: " + errors.Unwrap(r.err).Error()
	case r.err != nil:
		return outcomeConnError, "connection error: " + r.err.Error()
	case r.status >= 200 && r.status <= 299:
		return outcomeSuccess, ""
	case r.status == http.StatusGone:
		return outcomeGone, "HTTP 410 Gone"
	}
	msg = fmt.Sprintf("HTTP %d", r.status)
	if r.status >= 300 && r.status <= 399 {
		msg += " (redirects are not followed)"
	}
	if excerpt := bodyExcerpt(r.body); excerpt != "" {
		msg += ": " + excerpt
	}
	return outcomeHTTPError, msg
}

// responseText is the start of an answer's body as the attempt history
// keeps it: at most store.MaxResponseBody bytes, cut at a character
// boundary, invalid UTF-8 replaced.
func responseText(b []byte) string {
	if len(b) > store.MaxResponseBody {
		b = b[:store.MaxResponseBody]
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// bodyExcerpt is the start of a response body fit for last_error.
func bodyExcerpt(b []byte) string {
	if len(b) > lastErrorBody {
		b = b[:lastErrorBody]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}
