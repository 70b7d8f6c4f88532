package natsjs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
)

// JetStream error codes Append tells apart.
const (
	errCodeBatchDuplicate  = 10201 // atomic publish batch contains duplicate message id
	errCodeStreamMismatch  = 10060 // expected stream does not match
	errCodeMaxMsgSize      = 10054 // message size exceeds maximum allowed
	errCodeBatchIncomplete = 10176 // atomic publish batch is incomplete
	errCodeBatchTooMany    = 10210 // atomic publish too many inflight
)

// Headers of JetStream's publish protocol.
const (
	hdrMsgID          = "Nats-Msg-Id"
	hdrExpectedStream = "Nats-Expected-Stream"
	hdrBatchID        = "Nats-Batch-Id"
	hdrBatchSeq       = "Nats-Batch-Sequence"
	hdrBatchCommit    = "Nats-Batch-Commit"
)

// pubAck is JetStream's answer to a publish or a batch commit.
type pubAck struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Count     uint64 `json:"count"`
}

// apiError is a JetStream error answer.
type apiError struct {
	Code, ErrCode int
	Description   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream: %s (%d/%d)", e.Description, e.Code, e.ErrCode)
}

func isCode(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.ErrCode == code
}

// maxHeaders bounds what an event's message adds to its payload: the
// headers (Nats-Msg-Id, the batch headers), which count against the
// server's max_payload too.
const maxHeaders = 1 << 10

// pending is one event of an Append on its way to the stream.
type pending struct {
	subj    string
	id      string // Nats-Msg-Id
	payload []byte
	seq     uint64
	dup     bool
}

// Append implements store.Log.
//
// Append encodes the events and queues them for the Log's writers, which
// send the events of concurrent Appends together (see commit.go): the
// events of one Append are one JetStream atomic batch or part of one, so
// they are stored with consecutive seqs or not at all; a single event is a
// publish with Nats-Msg-Id, answered with its seq, or with the original's
// seq when the id repeats within the duplicate window. Append returns once
// the server has confirmed every event.
//
// When JetStream rejects the batch the Append was part of (nothing is
// stored then), Append tries again: after an ordinary limit (too many
// atomic batches open on the stream, an incomplete batch) it queues again
// after a short pause; after any other rejection (an id the server
// remembers, an event over max_payload in one of the Appends sharing the
// batch) it publishes its events alone, as follows. The server rejects a
// whole atomic batch that repeats an id it remembers without saying which;
// Append then probes each event (see probeDuplicate), takes the original
// seqs of the repeats, and publishes the rest as a new atomic batch, so
// the new events of a batch stay all-or-nothing. Repeats of an event
// within the batch itself are resolved here, to the first.
//
// Append waits while the writers' queue is full (Config.MaxPending,
// MaxPendingBytes) and gives up when ctx ends, or when its deadline
// passes (Config.Timeout from the call when ctx has none) before a writer
// sent its events, or its writer's round was not acknowledged within
// Config.Timeout (ErrUnavailable then: the events may have been stored,
// and a retry with the same ids finds them).
func (l *Log) Append(ctx context.Context, batch []store.Event, out []store.Appended) ([]store.Appended, error) {
	if l.stopped.Load() {
		return out, store.ErrClosed
	}
	if len(batch) > l.cfg.MaxBatch {
		return out, fmt.Errorf("%w: %d events, at most %d per atomic batch", store.ErrBatchTooLarge, len(batch), l.cfg.MaxBatch)
	}
	if len(batch) == 0 { // nothing to store (the ring answers the same)
		return out, nil
	}
	ps := make([]pending, len(batch))
	var first map[string]int // a single event needs none
	if len(batch) > 1 {
		first = make(map[string]int, len(batch))
	}
	var uniq []int
	bytes := 0
	for i := range batch {
		e := &batch[i]
		b, err := e.Unsequenced()
		if err != nil {
			return out, fmt.Errorf("encode event %d: %w", i, err)
		}
		// The headroom becomes `{` and blanks: the stored payload is the
		// event's JSON without its seq, valid on its own.
		b[0] = '{'
		for j := 1; j < store.SeqHeadroom; j++ {
			b[j] = ' '
		}
		ps[i] = pending{subj: l.subj + e.Type, id: msgID(e.Source, e.ID), payload: b}
		if most := l.nc.MaxPayload() - maxHeaders; int64(len(b)) > most {
			return out, fmt.Errorf("%w: event %d is %d bytes; the NATS server takes at most %d (max_payload, less headers)",
				store.ErrEventTooLarge, i, len(b), most)
		}
		if _, ok := first[ps[i].id]; !ok {
			if first != nil {
				first[ps[i].id] = i
			}
			uniq = append(uniq, i)
			bytes += len(b) + len(ps[i].subj) + maxHeaders/4
		}
	}
	// The deadline bounds the Append without a context of its own (a
	// timer per Append): the writers fail a request still queued when it
	// passes, and a slow path (a full queue, a retry) waits for it.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(l.cfg.Timeout)
	}
	if err := l.store(ctx, deadline, ps, uniq, bytes); err != nil {
		return out, l.appendError(ctx, err)
	}
	var top uint64
	for i := range ps {
		p := &ps[i]
		if f := first[p.id]; f != i {
			p.seq, p.dup = ps[f].seq, true
		}
		top = max(top, p.seq) // a duplicate's too: read-your-writes for its original
		out = append(out, store.Appended{Seq: p.seq, ID: batch[i].ID, Duplicate: p.dup})
	}
	l.awaitTail(ctx, top)
	return out, nil
}

// tailWait bounds how long an Append waits for the watcher (awaitTail).
const tailWait = 500 * time.Millisecond

// tailTimers are stopped timers for awaitTail, reused: one per Append
// otherwise.
var tailTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// awaitTail returns once the watcher has brought seq into the tail and
// advanced newest (so the readers woken for it read it from memory, and
// whoever reads after the Append answered finds it), or, after tailWait
// or when ctx ends or the Log closes, advances newest itself: a slow
// watcher never holds an Append up for long.
func (l *Log) awaitTail(ctx context.Context, seq uint64) {
	if seq == 0 || l.newest.Load() >= seq {
		return
	}
	t := tailTimers.Get().(*time.Timer)
	t.Reset(tailWait)
	defer func() {
		t.Stop() // no stale tick after Stop (Go 1.23 timers): reusable
		tailTimers.Put(t)
	}()
	for l.newest.Load() < seq && !l.stopped.Load() {
		select {
		case <-l.Wait(seq - 1):
			continue
		case <-t.C:
		case <-ctx.Done():
		case <-l.done: // the watcher has stopped: it brings nothing more
		}
		break
	}
	if l.newest.Load() < seq { // the watcher is behind: newest moves without it
		l.advance(seq)
		l.wakeWaiters()
	}
}

// store has the writers store ps[uniq] and retries as Append describes,
// until deadline.
func (l *Log) store(ctx context.Context, deadline time.Time, ps []pending, uniq []int, bytes int) error {
	for try := 0; ; try++ {
		r := &appendReq{ps: ps, uniq: uniq, bytes: bytes, deadline: deadline, done: make(chan struct{}), sent: make(chan struct{})}
		if err := l.commit.enqueue(ctx, deadline, r); err != nil {
			return err
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			if !r.state.CompareAndSwap(reqQueued, reqAbandoned) {
				// A writer took it: wait until it no longer reads the
				// payloads, which belong to the caller's events.
				<-r.sent
			}
			return ctx.Err()
		}
		var ae *apiError
		switch {
		case r.err == nil:
			return nil
		case !errors.As(r.err, &ae):
			return r.err // the outcome is unknown: appendError decides
		case isLimit(r.err):
			if err := pause(ctx, deadline, backoff(try)); err != nil {
				return err
			}
		default:
			dctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			return l.solo(dctx, ps, uniq)
		}
	}
}

// solo publishes ps[uniq] alone (not coalesced with other Appends), at
// most soloSlots at a time, trying again after an ordinary limit until
// ctx ends.
func (l *Log) solo(ctx context.Context, ps []pending, uniq []int) error {
	select {
	case l.soloSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.soloSem }()
	for try := 0; ; try++ {
		err := l.publish(ctx, ps, uniq)
		if !isLimit(err) {
			return err
		}
		if err := pause(ctx, time.Time{}, backoff(try)); err != nil {
			return err
		}
	}
}

// isLimit reports whether JetStream rejected an atomic batch for an
// ordinary limit that passes: too many batches open on the stream or the
// server (429), or a batch the server dropped before its commit (which is
// how a batch refused at its first message, sent without a reply, shows).
func isLimit(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.Code == 429 || ae.ErrCode == errCodeBatchTooMany || ae.ErrCode == errCodeBatchIncomplete)
}

// pause waits d or until ctx ends, or fails at once when deadline (zero:
// none) would pass first.
func pause(ctx context.Context, deadline time.Time, d time.Duration) error {
	if !deadline.IsZero() && time.Until(deadline) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// appendError classifies a failed publish for the caller: ctx's error when
// the caller gave up; ErrClosed once the log is closed; ErrEventTooLarge
// for the stream's message size limit; ErrUnavailable for what a retry may
// cure (a timeout, no responders, a lost connection, a JetStream 503 such
// as no quorum, ids another gateway keeps storing meanwhile), since the
// server may yet store the batch and a retry with the same ids finds it
// in the duplicate window; anything else as it is.
func (l *Log) appendError(ctx context.Context, err error) error {
	var ae *apiError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case l.stopped.Load():
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	case isCode(err, errCodeMaxMsgSize):
		return fmt.Errorf("%w: %w", store.ErrEventTooLarge, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		isCode(err, errCodeBatchDuplicate), errors.As(err, &ae) && ae.Code == 503:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	default:
		return err
	}
}
