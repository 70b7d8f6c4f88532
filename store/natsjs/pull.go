package natsjs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
)

// Pulls. A queue's Fetch is one JetStream pull request on the webhook's
// consumer ($JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>), answered on a
// reply subject of its own (inbox.<pull number>) whose subscription feeds
// the Log's one channel of pulled messages, read by one goroutine (the
// puller's, started by Open and stopped by Close). nats.go's
// Consumer.Fetch adds a goroutine and a jetstream.Msg per pull request;
// a busy webhook makes thousands a second.
//
// A pull ends when it has brought what it asked for, when the server ends
// it (a status message: 408 expired; 409 consumer deleted, leadership
// changed, max_bytes reached; 503 no responders), when its ctx ends, or
// when the Log closes; its channel is closed then and its subscription
// removed, so that the server drops the request rather than go on
// handing it messages nobody takes. A message that was already on its way
// to an ended pull goes straight back to the queue (a nak with no delay).

// pullMaxExpiry bounds a pull request whose ctx has no deadline.
const pullMaxExpiry = 30 * time.Second

// pulledMax bounds the channel of pulled messages: open pulls ask for at
// most the endpoints' prefetch each (a few hundred messages), so it does
// not fill; when it does, nats.go drops what comes (those deliveries come
// again after their AckWait).
const pulledMax = 1 << 16

// puller routes the messages of every open pull request.
type puller struct {
	l      *Log
	inbox  string // pull n's replies come on inbox.<n>
	pulled chan *nats.Msg

	mu   sync.Mutex
	next uint64
	open map[*nats.Subscription]*pullReq // nil once closed
}

// pullReq is one open pull request.
type pullReq struct {
	sub  *nats.Subscription
	q    *queue
	ch   chan store.Queued // capacity: what it asked for, so sends never block
	left int               // messages it may still bring
	stop func() bool       // ends its context.AfterFunc
}

func (l *Log) newPuller() (*puller, error) {
	return &puller{l: l, inbox: nats.NewInbox(), pulled: make(chan *nats.Msg, pulledMax), open: make(map[*nats.Subscription]*pullReq)}, nil
}

// run hands the pulled messages to their pulls until ctx ends.
func (p *puller) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.pulled:
			p.deliver(m)
		}
	}
}

// close ends every open pull and takes no more.
func (p *puller) close() {
	p.mu.Lock()
	open := p.open
	p.open = nil
	p.mu.Unlock()
	for _, pr := range open {
		pr.finish()
	}
}

// finish removes pr's subscription and closes its channel: pr is no
// longer open.
func (pr *pullReq) finish() {
	_ = pr.sub.Unsubscribe()
	pr.stop()
	close(pr.ch)
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
	p.mu.Lock()
	if p.open == nil {
		p.mu.Unlock()
		return nil, store.ErrClosed
	}
	p.next++
	reply := p.inbox + "." + strconv.FormatUint(p.next, 10)
	sub, err := p.l.nc.ChanSubscribe(reply, p.pulled)
	if err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("natsjs: pull for webhook %s: %w", q.id, err)
	}
	pr := &pullReq{sub: sub, q: q, ch: make(chan store.Queued, n), left: n}
	p.open[sub] = pr
	pr.stop = context.AfterFunc(ctx, func() { p.end(sub) })
	p.mu.Unlock()
	body := fmt.Appendf(nil, `{"batch":%d,"expires":%d,"max_bytes":%d}`, n, expires.Nanoseconds(), maxBytes)
	if err := p.l.nc.PublishRequest(q.nextSubj, reply, body); err != nil {
		p.end(sub)
		return nil, fmt.Errorf("natsjs: pull for webhook %s: %w", q.id, err)
	}
	return pr.ch, nil
}

// end ends the pull of sub, if it is still open.
func (p *puller) end(sub *nats.Subscription) {
	p.mu.Lock()
	pr := p.open[sub]
	delete(p.open, sub)
	p.mu.Unlock()
	if pr != nil {
		pr.finish()
	}
}

// deliver hands m to its pull, or ends the pull a status message answers.
func (p *puller) deliver(m *nats.Msg) {
	if len(m.Data) == 0 && m.Reply == "" {
		if status := m.Header.Get(hdrStatus); status != "" {
			if status != "100" { // not a heartbeat: the request is over
				p.end(m.Sub)
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
	pr := p.open[m.Sub]
	full := false
	if pr != nil {
		if err == nil {
			pr.ch <- store.Queued{Record: rec, Delivered: int(md.delivered), Pending: md.pending, Msg: ack}
		}
		if pr.left--; pr.left == 0 {
			delete(p.open, m.Sub)
			full = true
		}
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		_ = ack.Term()
	case pr == nil: // its pull has ended: back to the queue
		_ = ack.NakWithDelay(0)
	}
	if full { // it has brought all it asked for
		pr.finish()
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

// InProgress implements store.Settler.
func (a *ackReply) InProgress() error { return a.nc.Publish(a.subj, []byte("+WPI")) }
