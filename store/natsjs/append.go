package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// JetStream error codes Append tells apart.
const (
	errCodeBatchDuplicate = 10201 // atomic publish batch contains duplicate message id
	errCodeStreamMismatch = 10060 // expected stream does not match
	errCodeMaxMsgSize     = 10054 // message size exceeds maximum allowed
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
// One distinct event is one publish with Nats-Msg-Id: the server answers
// with its seq, or with the original's seq when the id repeats within the
// duplicate window. Several distinct events are one JetStream atomic
// batch: all are stored with consecutive seqs, or none. The server rejects
// a whole atomic batch that repeats an id it remembers without saying
// which; Append then probes each event (see probeDuplicate), takes the
// original seqs of the repeats, and publishes the rest as a new atomic
// batch, so the new events of a batch stay all-or-nothing. Repeats of an
// event within the batch itself are resolved here, to the first.
func (l *Log) Append(ctx context.Context, batch []store.Event, out []store.Appended) ([]store.Appended, error) {
	if l.stopped.Load() {
		return out, store.ErrClosed
	}
	if len(batch) > l.cfg.MaxBatch {
		return out, fmt.Errorf("%w: %d events, at most %d per atomic batch", store.ErrBatchTooLarge, len(batch), l.cfg.MaxBatch)
	}
	ps := make([]pending, len(batch))
	first := make(map[string]int, len(batch))
	var uniq []int
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
			first[ps[i].id] = i
			uniq = append(uniq, i)
		}
	}
	tctx, cancel := l.withTimeout(ctx)
	defer cancel()
	if err := l.publish(tctx, ps, uniq); err != nil {
		return out, l.appendError(ctx, err)
	}
	var top uint64
	for i := range ps {
		p := &ps[i]
		if f := first[p.id]; f != i {
			p.seq, p.dup = ps[f].seq, true
		}
		if !p.dup {
			top = max(top, p.seq)
		}
		out = append(out, store.Appended{Seq: p.seq, ID: batch[i].ID, Duplicate: p.dup})
	}
	l.advance(top)
	return out, nil
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
