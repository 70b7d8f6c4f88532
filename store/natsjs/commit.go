package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Group commit. Appends do not talk to JetStream themselves: each queues
// an appendReq, and the Log's writers (writers goroutines, started by Open
// and stopped by Close) take whatever is queued, a round at a time, and
// send it together:
//
//   - the requests of several events are packed, in queue order, into as
//     few atomic batches as MaxBatch allows (at most groupsPerRound per
//     round); each request's events stay consecutive within its batch, so
//     they get consecutive seqs, and the batch commits all or none;
//   - single events are plain publishes with Nats-Msg-Id, each with its own
//     acknowledgement, all in flight together.
//
// A writer then awaits every acknowledgement of its round at once (one
// subscription per writer, one reply subject per batch or single event),
// and hands each request its outcome. With two writers, one round is in
// flight while the next is being gathered, so a busy gateway sends few,
// large batches instead of one round trip per request.
//
// Atomic batches are held back, though, while a round with batches is in
// flight, unless what is queued fills a whole batch (MaxBatch events) or
// a round's bytes, or an Append waits for room in the queue:
// a stream commits its atomic batches one at a time, and each costs it a
// fixed amount besides its events (on file storage with one replica,
// nats-server stages every batch in a file store of its own: directory,
// files, two fsyncs), so a second round of a few requests would only
// wait behind the first and cost that again, where one round after it
// carries them all. Single events go out at once either way.
//
// Bounds: the queue holds at most MaxPending events and MaxPendingBytes
// bytes (a request larger than either is admitted alone into an empty
// queue); beyond that Append waits for room, honouring its ctx. A round
// holds at most groupsPerRound*MaxBatch events and roundBytes bytes, so at
// most writers*groupsPerRound atomic batches of this Log are open on the
// server at once (its default limit is 50 per stream, shared by all
// gateways), plus soloSlots for requests retried alone.
const (
	writers        = 2
	groupsPerRound = 4
	roundBytes     = 8 << 20
	soloSlots      = 4
)

// Defaults of the group commit's queue (Config.MaxPending, MaxPendingBytes).
const (
	DefaultMaxPending      = 20_000
	DefaultMaxPendingBytes = 32 << 20
)

// Request states: a queued request is taken by a writer or abandoned by
// its caller, whichever comes first.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// appendReq is one Append waiting for the writers.
type appendReq struct {
	ps       []pending
	uniq     []int // indexes of ps with distinct ids, in batch order
	bytes    int
	deadline time.Time // a request still queued then is failed, not sent
	state    atomic.Int32
	err      error         // set by the writer before done is closed
	sent     chan struct{} // closed by the writer once it no longer reads ps's payloads
	done     chan struct{} // closed by the writer when ps holds the seqs or err is set
}

// committer is the queue between Appends and the writers.
type committer struct {
	maxEvents, maxBytes int

	mu     sync.Mutex
	queue  []*appendReq
	events int
	bytes  int
	// batchEvents and batchBytes count the queued events and bytes of
	// requests of several (an atomic batch's), batchRounds the rounds
	// with such requests that writers have taken and not yet finished
	// (done).
	batchEvents int
	batchBytes  int
	batchRounds int
	closed      bool
	space       chan struct{} // closed when room is made; nil when nobody waits
	waiting     int           // Appends waiting for room
	work        chan struct{} // 1 slot: the queue may be non-empty
}

func newCommitter(maxEvents, maxBytes int) *committer {
	return &committer{maxEvents: maxEvents, maxBytes: maxBytes, work: make(chan struct{}, 1)}
}

func (c *committer) signal() {
	select {
	case c.work <- struct{}{}:
	default:
	}
}

// enqueue queues r, waiting while the queue is full, until deadline. It
// returns ctx's error, context.DeadlineExceeded, or store.ErrClosed once
// the committer is closed.
func (c *committer) enqueue(ctx context.Context, deadline time.Time, r *appendReq) error {
	n := len(r.uniq)
	var timeout <-chan time.Time // made when the queue is full: the slow path
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return store.ErrClosed
		}
		if len(c.queue) == 0 || (c.events+n <= c.maxEvents && c.bytes+r.bytes <= c.maxBytes) {
			c.queue = append(c.queue, r)
			c.events += n
			c.bytes += r.bytes
			if n > 1 {
				c.batchEvents += n
				c.batchBytes += r.bytes
			}
			c.mu.Unlock()
			c.signal()
			return nil
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.waiting++
		held := c.batchRounds > 0 && c.batchEvents > 0
		c.mu.Unlock()
		if held { // batches held back behind a round in flight may go now
			c.signal()
		}
		if timeout == nil {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timeout = t.C
		}
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout:
			err = context.DeadlineExceeded
		case <-space:
		}
		c.mu.Lock()
		c.waiting--
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// take removes the next round from the queue: requests in queue order
// while they fit in groupsPerRound atomic batches of maxBatch events, in
// groupsPerRound*maxBatch events in all (single events included, so that
// a round's acknowledgements fit the writer's subscription) and in
// roundBytes (at least one request). While a round with batches is in
// flight, it takes the single events only and leaves the batches queued
// (see the top of this file) unless they hold maxBatch events or
// roundBytes bytes, or an Append waits for room. It waits for work; nil
// means closed. A round taken is reported to done once committed.
func (c *committer) take(maxBatch int, stop <-chan struct{}) []*appendReq {
	for {
		select {
		case <-stop: // Close: what is still queued is failed by close, never sent
			return nil
		default:
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil
		}
		batches := c.mayTakeBatchesLocked(maxBatch)
		var round []*appendReq
		if len(c.queue) > 0 {
			var events, bytes, groups, fill, batchEvents, batchBytes int
			kept := c.queue[:0] // the requests left queued, in order
			for i, r := range c.queue {
				k := len(r.uniq)
				if k > 1 && !batches {
					kept = append(kept, r)
					continue
				}
				g, f := groups, fill
				if k > 1 {
					if g == 0 || f+k > maxBatch {
						g, f = g+1, 0
					}
					f += k
				}
				full := len(round) > 0 && (g > groupsPerRound || events+k > groupsPerRound*maxBatch || bytes+r.bytes > roundBytes)
				if full {
					kept = append(kept, c.queue[i:]...)
					break
				}
				round = append(round, r)
				groups, fill = g, f
				events += k
				bytes += r.bytes
				if k > 1 {
					batchEvents += k
					batchBytes += r.bytes
				}
			}
			clear(c.queue[len(kept):])
			c.queue = kept
			c.events -= events
			c.bytes -= bytes
			c.batchEvents -= batchEvents
			c.batchBytes -= batchBytes
			if batchEvents > 0 {
				c.batchRounds++
			}
			if len(round) > 0 && c.space != nil {
				close(c.space)
				c.space = nil
			}
		}
		if len(round) > 0 {
			// The other writer takes the rest, if it may.
			more := len(c.queue) > 0 && (c.batchEvents < c.events || c.mayTakeBatchesLocked(maxBatch))
			c.mu.Unlock()
			if more {
				c.signal()
			}
			return round
		}
		c.mu.Unlock()
		select {
		case <-c.work:
		case <-stop:
			return nil
		}
	}
}

// mayTakeBatchesLocked reports whether a round may take the queued
// batches: none is in flight, or they fill a batch or a round's bytes, or
// an Append waits for room (held batches must not keep it waiting).
func (c *committer) mayTakeBatchesLocked(maxBatch int) bool {
	return c.batchRounds == 0 || c.batchEvents >= maxBatch || c.batchBytes >= roundBytes || c.waiting > 0
}

// done reports a round that take returned as committed: batches held
// back for it may go.
func (c *committer) done(round []*appendReq) {
	for _, r := range round {
		if len(r.uniq) > 1 {
			c.mu.Lock()
			c.batchRounds--
			held := c.batchEvents > 0
			c.mu.Unlock()
			if held {
				c.signal()
			}
			return
		}
	}
}

// close fails every queued request with store.ErrClosed and wakes waiters.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	q := c.queue
	c.queue, c.events, c.bytes, c.batchEvents, c.batchBytes = nil, 0, 0, 0, 0
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	c.mu.Unlock()
	for _, r := range q {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			close(r.sent)
			r.finish(store.ErrClosed)
		}
	}
}

// finish hands r its outcome.
func (r *appendReq) finish(err error) {
	r.err = err
	close(r.done)
}

// writer is one of the Log's writer goroutines with its reply
// subscription.
type writer struct {
	l     *Log
	inbox string // replies arrive on inbox.<n>
	sub   *nats.Subscription
	next  uint64 // the next reply number
}

func (l *Log) newWriter() (*writer, error) {
	inbox := nats.NewInbox()
	sub, err := l.nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("natsjs: writer: %w", err)
	}
	// A round's acknowledgements, and late ones of a round that timed out.
	if err := sub.SetPendingLimits(4*groupsPerRound*l.cfg.MaxBatch+1024, 4*roundBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natsjs: writer: %w", err)
	}
	return &writer{l: l, inbox: inbox, sub: sub}, nil
}

// run takes and commits rounds until ctx ends or the committer closes.
func (w *writer) run(ctx context.Context) {
	for {
		round := w.l.commit.take(w.l.cfg.MaxBatch, ctx.Done())
		if round == nil {
			return
		}
		w.commit(ctx, round)
		w.l.commit.done(round)
	}
}

// target is what one acknowledgement answers: a single event or an atomic
// batch of several requests.
type target struct {
	reqs  []*appendReq
	count int // events
	err   error
	acked bool
}

// commit sends one round and hands each request its outcome.
func (w *writer) commit(ctx context.Context, round []*appendReq) {
	l := w.l
	base := w.next
	var targets []*target
	var group *target
	now := time.Now()
	for _, r := range round {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // its caller gave up before it was sent
		}
		if now.After(r.deadline) { // its Append's time is up: never sent
			close(r.sent)
			r.finish(fmt.Errorf("natsjs: %w: queued past the append's deadline", nats.ErrTimeout))
			continue
		}
		k := len(r.uniq)
		if k == 1 {
			targets = append(targets, &target{reqs: []*appendReq{r}, count: 1})
			continue
		}
		if group == nil || group.count+k > l.cfg.MaxBatch {
			group = &target{}
			targets = append(targets, group)
		}
		group.reqs = append(group.reqs, r)
		group.count += k
	}
	if len(targets) == 0 {
		return
	}
	w.next += uint64(len(targets))
	waiting := 0
	for i, t := range targets {
		reply := w.inbox + "." + strconv.FormatUint(base+uint64(i), 10)
		if err := w.send(t, reply); err != nil {
			t.err = err
			continue
		}
		waiting++
	}
	for _, t := range targets {
		for _, r := range t.reqs {
			close(r.sent)
		}
	}
	if waiting > 0 {
		w.await(ctx, base, targets, waiting)
	}
	for _, t := range targets {
		for _, r := range t.reqs {
			r.finish(t.err)
		}
	}
}

// send publishes t's events with reply on the last (the commit of an
// atomic batch, or the single event).
func (w *writer) send(t *target, reply string) error {
	l := w.l
	if t.count == 1 {
		r := t.reqs[0]
		p := &r.ps[r.uniq[0]]
		return l.nc.PublishMsg(&nats.Msg{Subject: p.subj, Reply: reply, Data: p.payload, Header: nats.Header{hdrMsgID: {p.id}}})
	}
	bid := nuid.Next()
	n := 0
	for _, r := range t.reqs {
		for _, i := range r.uniq {
			p := &r.ps[i]
			n++
			m := &nats.Msg{Subject: p.subj, Data: p.payload, Header: nats.Header{
				hdrMsgID:    {p.id},
				hdrBatchID:  {bid},
				hdrBatchSeq: {strconv.Itoa(n)},
			}}
			if n == t.count {
				m.Reply = reply
				m.Header[hdrBatchCommit] = []string{"1"}
			}
			if err := l.nc.PublishMsg(m); err != nil {
				return err // the server drops the incomplete batch
			}
		}
	}
	return nil
}

// await collects the acknowledgements of targets (replies base+i) until
// waiting have arrived, the Log's Timeout passes or ctx ends (Close).
func (w *writer) await(ctx context.Context, base uint64, targets []*target, waiting int) {
	ctx, cancel := context.WithTimeout(ctx, w.l.cfg.Timeout)
	defer cancel()
	for waiting > 0 {
		m, err := w.sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				err = nats.ErrTimeout
			}
			for _, t := range targets {
				if !t.acked && t.err == nil {
					t.err = err
				}
			}
			return
		}
		n, perr := strconv.ParseUint(m.Subject[len(w.inbox)+1:], 10, 64)
		if perr != nil || n < base || n >= base+uint64(len(targets)) {
			continue // a late answer to a round that timed out
		}
		t := targets[n-base]
		if t.acked {
			continue
		}
		t.acked = true
		waiting--
		t.err = w.settle(t, m)
	}
}

// settle applies acknowledgement m to t's requests.
func (w *writer) settle(t *target, m *nats.Msg) error {
	if len(m.Data) == 0 && m.Header != nil && m.Header.Get("Status") == "503" {
		return nats.ErrNoResponders
	}
	var ack pubAck
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return fmt.Errorf("natsjs: publish answer %q: %w", m.Data, err)
	}
	if ack.Error != nil {
		return &apiError{Code: ack.Error.Code, ErrCode: ack.Error.ErrCode, Description: ack.Error.Description}
	}
	if ack.Stream != w.l.cfg.Stream {
		return fmt.Errorf("natsjs: %w: stored by stream %q, not %q", errWrongStream, ack.Stream, w.l.cfg.Stream)
	}
	if t.count == 1 {
		r := t.reqs[0]
		p := &r.ps[r.uniq[0]]
		p.seq, p.dup = ack.Seq, ack.Duplicate
		return nil
	}
	if ack.Count != uint64(t.count) || ack.Seq < ack.Count {
		return fmt.Errorf("natsjs: batch of %d acknowledged as %d ending at %d", t.count, ack.Count, ack.Seq)
	}
	seq := ack.Seq - ack.Count + 1
	for _, r := range t.reqs {
		for _, i := range r.uniq {
			r.ps[i].seq = seq
			seq++
		}
	}
	return nil
}

var errWrongStream = errors.New("wrong stream")

// startWriters starts the writer goroutines; stopWriters stops them.
func (l *Log) startWriters() error {
	l.commit = newCommitter(l.cfg.MaxPending, l.cfg.MaxPendingBytes)
	var ws []*writer
	for range writers {
		w, err := l.newWriter()
		if err != nil {
			for _, w := range ws {
				_ = w.sub.Unsubscribe()
			}
			return err
		}
		ws = append(ws, w)
	}
	ctx, stop := context.WithCancel(context.Background())
	l.stopWriters = stop
	l.writersDone.Add(len(ws))
	for _, w := range ws {
		go func() {
			defer l.writersDone.Done()
			defer func() { _ = w.sub.Unsubscribe() }()
			w.run(ctx)
		}()
	}
	return nil
}

// closeWriters stops the writers, waits for them (a round in flight ends
// with ErrClosed for its requests) and fails what is still queued.
func (l *Log) closeWriters() {
	if l.commit == nil {
		return
	}
	l.stopWriters()
	l.writersDone.Wait()
	l.commit.close()
}

// backoff is the pause before the try'th retry after an ordinary limit.
func backoff(try int) time.Duration {
	d := time.Millisecond << min(try, 6) // 1ms … 64ms
	return d/2 + rand.N(d/2+1)
}
