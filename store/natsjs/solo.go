package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// The path of an Append published alone (Log.solo): one round trip per
// single event or atomic batch, and the duplicate probes.

// publish stores the events ps[idx] (distinct ids), filling seq and dup.
func (l *Log) publish(ctx context.Context, ps []pending, idx []int) error {
	if len(idx) == 1 {
		return l.publishOne(ctx, &ps[idx[0]])
	}
	err := l.publishBatch(ctx, ps, idx)
	// A remembered id in the batch: resolve the repeats one by one and
	// publish the rest atomically. Another gateway may store one of them
	// meanwhile, so try a few times.
	for try := 0; try < 3 && isCode(err, errCodeBatchDuplicate); try++ {
		var fresh []int
		for _, i := range idx {
			dup, err := l.probeDuplicate(ctx, &ps[i])
			if err != nil {
				return err
			}
			if !dup {
				fresh = append(fresh, i)
				continue
			}
			// The id is remembered: a plain publish returns the
			// original's seq and stores nothing. (Should the window end
			// in between, it stores the event, alone: then it is no
			// longer a repeat, as the window defines it.)
			if err := l.publishOne(ctx, &ps[i]); err != nil {
				return err
			}
		}
		switch len(fresh) {
		case 0:
			return nil
		case 1:
			return l.publishOne(ctx, &ps[fresh[0]])
		}
		idx = fresh
		err = l.publishBatch(ctx, ps, idx)
	}
	if err != nil {
		return fmt.Errorf("natsjs: append: %w", err)
	}
	return nil
}

// publishOne publishes p alone with its Nats-Msg-Id.
func (l *Log) publishOne(ctx context.Context, p *pending) error {
	m := &nats.Msg{Subject: p.subj, Data: p.payload, Header: nats.Header{hdrMsgID: {p.id}}}
	ack, err := l.request(ctx, m)
	if err != nil {
		return err
	}
	p.seq, p.dup = ack.Seq, ack.Duplicate
	return nil
}

// publishBatch publishes ps[idx] as one atomic batch: every message but
// the last without a reply subject (the server stages them), the last with
// the commit header, whose answer carries the batch's last seq.
func (l *Log) publishBatch(ctx context.Context, ps []pending, idx []int) error {
	bid := nuid.Next()
	for n, i := range idx {
		p := &ps[i]
		m := &nats.Msg{Subject: p.subj, Data: p.payload, Header: nats.Header{
			hdrMsgID:    {p.id},
			hdrBatchID:  {bid},
			hdrBatchSeq: {strconv.Itoa(n + 1)},
		}}
		if n < len(idx)-1 {
			if err := l.nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header[hdrBatchCommit] = []string{"1"}
		ack, err := l.request(ctx, m)
		if err != nil {
			return err
		}
		if ack.Count != uint64(len(idx)) || ack.Seq < ack.Count {
			return fmt.Errorf("natsjs: batch of %d acknowledged as %d ending at %d", len(idx), ack.Count, ack.Seq)
		}
		for k, j := range idx {
			ps[j].seq = ack.Seq - ack.Count + 1 + uint64(k)
		}
	}
	return nil
}

// probeDuplicate asks whether the server remembers p's id, storing nothing:
// it sends p and then a message bound to fail (it expects another stream)
// as one atomic batch. The server checks the batch in order, so it fails
// on p's id if remembered (duplicate), else on the second message.
func (l *Log) probeDuplicate(ctx context.Context, p *pending) (bool, error) {
	bid := nuid.Next()
	if err := l.nc.PublishMsg(&nats.Msg{Subject: p.subj, Data: p.payload, Header: nats.Header{
		hdrMsgID: {p.id}, hdrBatchID: {bid}, hdrBatchSeq: {"1"},
	}}); err != nil {
		return false, err
	}
	_, err := l.request(ctx, &nats.Msg{Subject: p.subj, Header: nats.Header{
		hdrBatchID: {bid}, hdrBatchSeq: {"2"}, hdrBatchCommit: {"1"},
		hdrExpectedStream: {l.cfg.Stream + ".probe"},
	}})
	switch {
	case isCode(err, errCodeBatchDuplicate):
		return true, nil
	case isCode(err, errCodeStreamMismatch):
		return false, nil
	case err == nil:
		return false, errors.New("natsjs: duplicate probe was stored")
	default:
		return false, err
	}
}

// request sends m and decodes JetStream's answer.
func (l *Log) request(ctx context.Context, m *nats.Msg) (*pubAck, error) {
	resp, err := l.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("natsjs: no stream answers on %s: %w", m.Subject, err)
		}
		return nil, err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("natsjs: publish answer %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return nil, &apiError{Code: ack.Error.Code, ErrCode: ack.Error.ErrCode, Description: ack.Error.Description}
	}
	if ack.Stream != l.cfg.Stream {
		return nil, fmt.Errorf("natsjs: %s is stored by stream %q, not %q", m.Subject, ack.Stream, l.cfg.Stream)
	}
	return &ack, nil
}
