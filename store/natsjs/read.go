package natsjs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
)

// Headers of JetStream's direct get answers.
const (
	hdrStatus     = "Status"
	hdrSequence   = "Nats-Sequence"
	hdrSubject    = "Nats-Subject"
	hdrTimeStamp  = "Nats-Time-Stamp"
	hdrNumPending = "Nats-Num-Pending"
)

// getRequest is a JetStream direct get request.
type getRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

// answer is what one batch direct get brought back.
type answer struct {
	recs    []store.Record
	pending uint64 // matching messages left after the last one sent
	done    bool
}

// Read implements store.Log from the tail when it holds the events after
// after (the readers that follow the log), else with JetStream's batch
// direct get (AllowDirect):
// a request names a start seq, a count and optionally one subject filter,
// and the server streams back the stored messages, ending with an EOB
// status. Direct gets may be served by any replica of the stream, which
// may trail the leader; Read therefore never reports Next past what the
// answering replica proved it had examined:
//
//   - unfiltered, the seqs are dense (events leave from the head only),
//     so the last record returned is the end of what was examined;
//   - filtered, one request per pattern goes out together with a probe (an
//     unfiltered batch of one from after+1) whose answer gives the
//     replica's first and last seq; requests on one connection are served
//     in order by the replica on the gateway's server, so the filtered
//     answers cover at least up to that last seq.
//
// Patterns go to the server as subject filters; a multi-pattern filter's
// answers are merged by seq.
func (l *Log) Read(ctx context.Context, after uint64, limit int, f store.Filter, dst []store.Record) (store.Page, error) {
	dst = dst[:0]
	b := l.Bounds()
	p := store.Page{Bounds: b, Next: after, Records: dst}
	if limit <= 0 || b.Newest == 0 || after >= b.Newest {
		return p, nil
	}
	// The tail serves a read that it takes to newest or to limit: else
	// what it lacks (appended here, not yet brought by the watcher) is
	// read from the stream.
	if recs, next, ok := l.tail.read(after, b.Oldest, limit, f, dst); ok && (next >= b.Newest || len(recs) >= limit) {
		p.Records, p.Next = recs, next
		l.saw(&p)
		return p, nil
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()

	reqs := make([]getRequest, 0, 1+len(f))
	if f == nil {
		reqs = append(reqs, getRequest{Seq: after + 1, Batch: limit})
	} else {
		reqs = append(reqs, getRequest{Seq: after + 1, Batch: 1}) // the probe
		for _, pat := range f {
			reqs = append(reqs, getRequest{Seq: after + 1, Batch: limit, NextFor: l.subj + pat.String()})
		}
	}
	seed := dst
	if f != nil {
		seed = nil // the probe's record is not returned
	}
	ans, err := l.directGet(ctx, reqs, seed)
	if err != nil {
		return p, err
	}

	// What the first answer tells of the head: a first seq past after+1
	// means the seqs between were dropped.
	head := ans[0]
	first := uint64(0)
	if len(head.recs) > 0 {
		first = head.recs[0].Seq
	} else if b.Oldest > after+1 {
		first = b.Oldest // nothing stored at or past after+1 any more
	}
	if first > after+1 {
		p.Gap = &store.Gap{From: after + 1, To: first - 1}
		l.raiseOldest(first)
	}
	if f == nil {
		p.Records = head.recs
		if n := len(head.recs); n > 0 {
			p.Next = head.recs[n-1].Seq
		} else if p.Gap != nil {
			p.Next = p.Gap.To
		}
		l.saw(&p)
		return p, nil
	}

	// The replica's last seq when it answered the probe.
	examined := after
	if p.Gap != nil {
		examined = p.Gap.To
	}
	if len(head.recs) > 0 {
		examined = max(examined, first+head.pending)
	}
	// Each full answer (limit reached, or more pending) is complete only
	// up to its last record.
	cut := uint64(0)
	full := false
	var merged []store.Record
	for _, a := range ans[1:] {
		merged = append(merged, a.recs...)
		if n := len(a.recs); n > 0 && (n >= limit || a.pending > 0) {
			if last := a.recs[n-1].Seq; !full || last < cut {
				cut = last
			}
			full = true
		}
	}
	if len(ans) > 2 {
		slices.SortFunc(merged, func(x, y store.Record) int { return cmpSeq(x.Seq, y.Seq) })
		merged = slices.CompactFunc(merged, func(x, y store.Record) bool { return x.Seq == y.Seq })
	}
	if full {
		n := 0
		for n < len(merged) && merged[n].Seq <= cut {
			n++
		}
		merged = merged[:n]
	}
	if len(merged) >= limit {
		merged = merged[:limit]
		p.Next = merged[limit-1].Seq
	} else if full {
		p.Next = cut
	} else {
		p.Next = examined
		if n := len(merged); n > 0 {
			p.Next = max(p.Next, merged[n-1].Seq)
		}
	}
	p.Records = append(dst, merged...)
	l.saw(&p)
	return p, nil
}

// saw moves newest up to what a read examined: those events are stored,
// though the watcher may not have reported them yet (another gateway
// appended them). A reader's cursor is thus never past newest, where a
// wake-up for an event below it would look like nothing new.
func (l *Log) saw(p *store.Page) {
	if p.Next > p.Newest {
		l.advance(p.Next)
		p.Newest = p.Next
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// directGet sends every request at once (on one connection, so the
// answering replica serves them in order) and collects their answers. The
// first answer's records are appended to dst (which may be nil).
func (l *Log) directGet(ctx context.Context, reqs []getRequest, dst []store.Record) ([]answer, error) {
	inbox := l.nc.NewInbox()
	sub, err := l.nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("natsjs: read: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ans := make([]answer, len(reqs))
	ans[0].recs = dst
	for i, r := range reqs {
		body, _ := json.Marshal(r) // plain struct: never fails
		if err := l.nc.PublishRequest(l.getSubj, inbox+"."+strconv.Itoa(i), body); err != nil {
			return nil, fmt.Errorf("natsjs: read: %w", err)
		}
	}
	for left := len(reqs); left > 0; {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("natsjs: read: %w", err)
		}
		i, err := strconv.Atoi(m.Subject[len(inbox)+1:])
		if err != nil || i < 0 || i >= len(ans) || ans[i].done {
			continue
		}
		a := &ans[i]
		switch status := m.Header.Get(hdrStatus); status {
		case "":
			rec, err := l.record(m)
			if err != nil {
				return nil, err
			}
			a.recs = append(a.recs, rec)
			continue
		case "204": // end of batch
			a.pending, _ = strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
		case "404": // nothing at or past the start seq matches
		default:
			return nil, fmt.Errorf("natsjs: read: direct get answered %s %s", status, m.Header.Get("Description"))
		}
		a.done = true
		left--
	}
	return ans, nil
}

// Get implements store.Log with a direct get by seq.
func (l *Log) Get(ctx context.Context, seq uint64) (store.Record, error) {
	if seq == 0 {
		return store.Record{}, fmt.Errorf("seq 0: %w", store.ErrNotFound)
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	body, _ := json.Marshal(getRequest{Seq: seq}) // plain struct: never fails
	m, err := l.nc.RequestWithContext(ctx, l.getSubj, body)
	if err != nil {
		return store.Record{}, fmt.Errorf("natsjs: get %d: %w", seq, err)
	}
	switch status := m.Header.Get(hdrStatus); status {
	case "":
		return l.record(m)
	case "404":
		return store.Record{}, fmt.Errorf("seq %d: %w", seq, store.ErrNotFound)
	default:
		return store.Record{}, fmt.Errorf("natsjs: get %d: direct get answered %s %s", seq, status, m.Header.Get("Description"))
	}
}

// errBadRecord: a stored message that eventgate did not write.
var errBadRecord = errors.New("natsjs: stored message is not an eventgate event")

// record makes a Record of a direct get answer. It stamps the seq into the
// headroom of m.Data in place: the bytes are this answer's own.
func (l *Log) record(m *nats.Msg) (store.Record, error) {
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return store.Record{}, fmt.Errorf("%w: seq %q", errBadRecord, m.Header.Get(hdrSequence))
	}
	ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(hdrTimeStamp))
	if err != nil {
		return store.Record{}, fmt.Errorf("%w: timestamp: %w", errBadRecord, err)
	}
	return l.recordOf(seq, m.Header.Get(hdrSubject), ts, m.Data)
}

// recordOf makes a Record of a stored message's seq, subject, time and
// payload d, stamping the seq into d's headroom in place.
func (l *Log) recordOf(seq uint64, subj string, ts time.Time, d []byte) (store.Record, error) {
	if len(subj) <= len(l.subj) || subj[:len(l.subj)] != l.subj {
		return store.Record{}, fmt.Errorf("%w: subject %q", errBadRecord, subj)
	}
	if len(d) < store.SeqHeadroom+len(`"id":""}`) || d[0] != '{' {
		return store.Record{}, fmt.Errorf("%w: seq %d", errBadRecord, seq)
	}
	id, err := leadingID(d[store.SeqHeadroom:])
	if err != nil {
		return store.Record{}, fmt.Errorf("%w: seq %d: %w", errBadRecord, seq, err)
	}
	return store.Record{
		Seq:      seq,
		ID:       id,
		Type:     subj[len(l.subj):],
		StoredAt: ts.UnixNano(),
		JSON:     store.StampSeq(d, seq),
	}, nil
}

// leadingID reads the id from `"id":"…",…`, the start of every encoded
// event after its headroom.
func leadingID(b []byte) (string, error) {
	const key = `"id":"`
	if !bytes.HasPrefix(b, []byte(key)) {
		return "", errors.New("no leading id")
	}
	s := b[len(key):]
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			return string(s[:i]), nil
		case '\\': // escaped: let encoding/json read the string
			var id string
			dec := json.NewDecoder(bytes.NewReader(b[len(key)-1:]))
			if err := dec.Decode(&id); err != nil {
				return "", err
			}
			return id, nil
		}
	}
	return "", errors.New("unterminated id")
}
