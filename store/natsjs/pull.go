package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
)

// Pulls. A queue's Fetch is one JetStream pull request on the webhook's
// consumer ($JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>), answered on
// the Log's pull inbox: one subscription for the pulls of every queue,
// read by one goroutine (the puller's, started by Open and stopped by
// Close). nats.go's Consumer.Fetch makes a subscription, a goroutine and
// a jetstream.Msg per pull request; a busy webhook makes thousands a
// second.
//
// A delivered message keeps its own subject; its acknowledgement subject
// names the consumer, so the puller hands it to the oldest open pull of
// that webhook's queue. A status message comes on the reply subject of
// its request (inbox.<pull number>): anything but a heartbeat (408
// expired; 409 consumer deleted, leadership changed, max_bytes reached)
// ends that pull.
// A pull also ends when it has brought what it asked for or when its ctx
// ends; its channel is closed then. A message for a queue with no open
// pull (its pull ended while the server still sent) goes straight back
// to the queue, a nak with no delay, for the next pull of any gateway.

// pullMaxExpiry bounds a pull request whose ctx has no deadline.
const pullMaxExpiry = 30 * time.Second

// puller routes the messages of every open pull request.
type puller struct {
	l     *Log
	inbox string // replies arrive on inbox.<pull number>
	sub   *nats.Subscription

	mu     sync.Mutex
	next   uint64
	open   map[uint64]*pullReq   // nil once closed
	queues map[string][]*pullReq // the open pulls by consumer, oldest first
}

// pullReq is one open pull request.
type pullReq struct {
	id   uint64
	q    *queue
	ch   chan store.Queued // capacity: what it asked for, so sends never block
	left int               // messages it may still bring
	stop func() bool       // ends its context.AfterFunc
}

func (l *Log) newPuller() (*puller, error) {
	p := &puller{l: l, inbox: nats.NewInbox(), open: make(map[uint64]*pullReq), queues: make(map[string][]*pullReq)}
	sub, err := l.nc.SubscribeSync(p.inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("natsjs: pull inbox: %w", err)
	}
	// Unbounded in messages (every queue's MaxAckPending bounds them), and
	// in bytes at what the server would send us at once.
	if err := sub.SetPendingLimits(-1, int(max(64<<20, 4*l.nc.MaxPayload()))); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natsjs: pull inbox: %w", err)
	}
	p.sub = sub
	return p, nil
}

// run hands the inbox's messages to their pulls until ctx ends.
func (p *puller) run(ctx context.Context) {
	for {
		m, err := p.sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
				return
			}
			p.l.log.Warn("natsjs: pull inbox", "err", err)
			continue
		}
		p.deliver(m)
	}
}

// close ends every open pull and stops taking new ones.
func (p *puller) close() {
	p.mu.Lock()
	open := p.open
	p.open, p.queues = nil, nil
	p.mu.Unlock()
	for _, pr := range open {
		pr.stop()
		close(pr.ch)
	}
	_ = p.sub.Unsubscribe()
}

// fetch opens a pull request of q for up to n messages in maxBytes (0:
// unbounded), ended when ctx ends (see the package comment above).
func (p *puller) fetch(ctx context.Context, q *queue, n, maxBytes int) (<-chan store.Queued, error) {
	expires := pullMaxExpiry
	if d, ok := ctx.Deadline(); ok {
		expires = min(expires, time.Until(d))
	}
	if expires <= time.Millisecond {
		return nil, fmt.Errorf("natsjs: pull for webhook %s: %w", q.id, context.DeadlineExceeded)
	}
	pr := &pullReq{q: q, ch: make(chan store.Queued, n), left: n}
	p.mu.Lock()
	if p.open == nil {
		p.mu.Unlock()
		return nil, store.ErrClosed
	}
	p.next++
	id := p.next
	pr.id = id
	p.open[id] = pr
	p.queues[q.id] = append(p.queues[q.id], pr)
	pr.stop = context.AfterFunc(ctx, func() { p.end(id) })
	p.mu.Unlock()
	body := fmt.Appendf(nil, `{"batch":%d,"expires":%d,"max_bytes":%d}`, n, expires.Nanoseconds(), maxBytes)
	if err := p.l.nc.PublishRequest(q.nextSubj, p.inbox+"."+strconv.FormatUint(id, 10), body); err != nil {
		p.end(id)
		return nil, fmt.Errorf("natsjs: pull for webhook %s: %w", q.id, err)
	}
	return pr.ch, nil
}

// end ends pull id, if it is still open.
func (p *puller) end(id uint64) {
	p.mu.Lock()
	pr := p.open[id]
	if pr != nil {
		p.removeLocked(pr)
	}
	p.mu.Unlock()
	if pr != nil {
		pr.stop()
		close(pr.ch)
	}
}

// removeLocked takes pr off the open pulls.
func (p *puller) removeLocked(pr *pullReq) {
	delete(p.open, pr.id)
	list := p.queues[pr.q.id]
	for i, o := range list {
		if o == pr {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.queues, pr.q.id)
	} else {
		p.queues[pr.q.id] = list
	}
}

// deliver hands m to the oldest open pull of its queue, or ends the pull
// a status message answers.
func (p *puller) deliver(m *nats.Msg) {
	if len(m.Data) == 0 && m.Reply == "" {
		if status := m.Header.Get(hdrStatus); status != "" {
			if status == "100" { // a heartbeat
				return
			}
			if n, ok := strings.CutPrefix(m.Subject, p.inbox+"."); ok {
				if id, err := strconv.ParseUint(n, 10, 64); err == nil {
					p.end(id)
				}
			}
			return
		}
	}
	md, ok := parseAckSubject(m.Reply)
	if !ok {
		return // not a JetStream delivery
	}
	ack := &ackReply{nc: p.l.nc, subj: m.Reply}
	rec, err := p.l.recordOf(md.seq, m.Subject, time.Unix(0, md.ts), m.Data)
	if err != nil {
		p.l.log.Warn("natsjs: not an eventgate event; skipped", "webhook", md.consumer, "err", err)
	}
	p.mu.Lock()
	var full *pullReq // the pull this message completes
	open := false
	if list := p.queues[md.consumer]; len(list) > 0 {
		open = true
		pr := list[0]
		if err == nil {
			pr.ch <- store.Queued{Record: rec, Delivered: int(md.delivered), Pending: md.pending, Msg: ack}
		}
		if pr.left--; pr.left == 0 {
			p.removeLocked(pr)
			full = pr
		}
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		_ = ack.Term()
	case !open: // no pull open: back to the queue
		_ = ack.NakWithDelay(0)
	}
	if full != nil {
		full.stop()
		close(full.ch)
	}
}

// ackMeta is what the acknowledgement subject of a message JetStream
// delivered says of it.
type ackMeta struct {
	consumer                string
	delivered, seq, pending uint64
	ts                      int64
}

// parseAckSubject reads $JS.ACK.<stream>.<consumer>.<delivered>.<stream
// seq>.<consumer seq>.<time>.<pending>, or the newer form with
// <domain>.<account hash> after $JS.ACK. and a token at the end.
func parseAckSubject(s string) (ackMeta, bool) {
	rest, ok := strings.CutPrefix(s, "$JS.ACK.")
	if !ok {
		return ackMeta{}, false
	}
	t := strings.Split(rest, ".")
	switch {
	case len(t) == 7:
	case len(t) >= 9:
		t = t[2:]
	default:
		return ackMeta{}, false
	}
	md := ackMeta{consumer: t[1]}
	var err [4]error
	md.delivered, err[0] = strconv.ParseUint(t[2], 10, 64)
	md.seq, err[1] = strconv.ParseUint(t[3], 10, 64)
	ts, e := strconv.ParseInt(t[5], 10, 64)
	md.ts, err[2] = ts, e
	md.pending, err[3] = strconv.ParseUint(t[6], 10, 64)
	return md, err == [4]error{}
}

// ackReply settles a delivered message on its acknowledgement subject
// (store.Settler), without waiting for the server.
type ackReply struct {
	nc   *nats.Conn
	subj string
}

// Ack implements store.Settler.
func (a *ackReply) Ack() error { return a.nc.Publish(a.subj, []byte("+ACK")) }

// NakWithDelay implements store.Settler.
func (a *ackReply) NakWithDelay(delay time.Duration) error {
	if delay <= 0 {
		return a.nc.Publish(a.subj, []byte("-NAK"))
	}
	return a.nc.Publish(a.subj, fmt.Appendf(nil, `-NAK {"delay":%d}`, delay.Nanoseconds()))
}

// Term implements store.Settler.
func (a *ackReply) Term() error { return a.nc.Publish(a.subj, []byte("+TERM")) }
