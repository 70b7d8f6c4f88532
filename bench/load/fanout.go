package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// fanoutConfig drives the fanout mode.
type fanoutConfig struct {
	subs     int
	rate     int           // events per second published
	duration time.Duration // publishing time
	grace    time.Duration // after publishing, how long subscribers may take to catch up
	p99Limit time.Duration // a run is "sustained" only under it
}

// fanoutResult is what one fan-out run measured.
type fanoutResult struct {
	subs, rate   int
	published    float64 // events/s the publisher achieved
	delivered    float64 // events/s summed over subscribers
	p50, p99     time.Duration
	lost, dup    uint64
	reordered    uint64
	cut          int     // subscribers whose stream ended early
	goingAway    int     // of them, closed by the gateway with 1001 while it was not stopping
	othersBad    uint64  // events lost, duplicated or reordered at the subscribers not closed with 1001
	perMsg       float64 // events per WebSocket message
	clientCPU    string
	serverCPU    string
	serverPer    string // µs of server CPU per delivered event
	sustained    bool   // nothing lost, duplicated, reordered or cut, p99 under the limit
	firstFailure string
}

func (r fanoutResult) String() string {
	ok := "sustained"
	if !r.sustained {
		ok = "NOT sustained: " + r.firstFailure
	}
	return fmt.Sprintf("subs %5d rate %6d/s  published %6.0f/s  delivered %9.0f/s  p50 %7s ms  p99 %7s ms  lost %d dup %d reordered %d cut %d  events/msg %.1f  cores client %s server %s  server cpu µs/event %s  %s",
		r.subs, r.rate, r.published, r.delivered, ms(r.p50), ms(r.p99), r.lost, r.dup, r.reordered, r.cut, r.perMsg, r.clientCPU, r.serverCPU, r.serverPer, ok)
}

// subscriber is one stream client: it checks every event's seq and
// measures publish-to-receive latency from the send time in the event.
type subscriber struct {
	conn   *websocket.Conn
	ck     *checker
	h      hist
	msgs   int
	events uint64 // events received within the run
	err    error
	// contig is the seq up to which every event has been seen, for the
	// runner to tell when this subscriber is done.
	contig atomic.Uint64
	// ended is set when read returns, so that the runner stops waiting
	// for a stream that failed or was closed.
	ended atomic.Bool
	// seqKey is the field holding the seq to check: `{"seq":` at a line's
	// start for eventgate's NDJSON, `"n":` in the data for Centrifugo.
	seqKey     []byte
	centrifugo bool
}

var (
	keySeq = []byte(`{"seq":`)
	keyN   = []byte(`"n":`)
	keyT   = []byte(`"t":`)
)

// read reads messages until ctx ends (the runner cancels it once contig
// reaches the last seq published) or the stream fails.
func (s *subscriber) read(ctx context.Context) {
	defer s.ended.Store(true)
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		s.msgs++
		for line := range bytes.SplitSeq(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
			if s.centrifugo && bytes.Equal(line, []byte("{}")) { // a ping: answer it
				_ = s.conn.Write(ctx, websocket.MessageText, []byte("{}"))
				continue
			}
			seq, ok := fieldUint(line, s.seqKey, !s.centrifugo)
			if !ok {
				continue // hello, gap, reset or a reply
			}
			s.ck.observe(seq)
			s.events++
			if t, ok := fieldUint(line, keyT, false); ok {
				s.h.add(time.Duration(now - int64(t)))
			}
		}
		if len(s.ck.missing) == 0 && s.ck.overflow == 0 {
			s.contig.Store(s.ck.next - 1)
		}
	}
}

// fieldUint returns the unsigned number after key in line (at its start
// when prefix is set).
func fieldUint(line, key []byte, prefix bool) (uint64, bool) {
	i := 0
	if prefix {
		if !bytes.HasPrefix(line, key) {
			return 0, false
		}
	} else if i = bytes.Index(line, key); i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	return v, err == nil
}

// dialStream opens an eventgate-style stream (eventgate or bare-hub),
// reads the hello and returns a subscriber expecting newest+1 next.
func dialStream(ctx context.Context, base string) (*subscriber, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/stream"
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(-1)
	_, b, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("hello: %w", err)
	}
	var hello struct {
		Hello *struct{ Newest uint64 } `json:"hello"`
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if err := json.Unmarshal(line, &hello); err != nil || hello.Hello == nil {
		conn.CloseNow()
		return nil, fmt.Errorf("first line is not a hello: %.100s", b)
	}
	return &subscriber{conn: conn, ck: newChecker(hello.Hello.Newest + 1), seqKey: keySeq}, nil
}

// publisher posts events at a rate and reports the last seq stored.
type publisher interface {
	// publish stores n events whose data carries the send time and the
	// counters from, from+1, …; it returns the highest seq stored.
	publish(ctx context.Context, n int, from uint64) (uint64, error)
}

// httpPublisher posts batches to eventgate's (or bare-hub's) /v1/events,
// each to the next gateway of s in turn (always the same one but for a
// scale-out group).
type httpPublisher struct {
	client *http.Client
	s      *server
	typ    string        // the events' type
	next   atomic.Uint64 // publishes so far, to pick the gateway
}

// benchData is the data of a fan-out or webhook event: the send time (t,
// Unix ns), the publisher's counter (n) and padding to about 200 bytes of
// event.
func benchData(dst []byte, t int64, n uint64) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"n":`...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, `,"pad":"0123456789abcdef0123456789abcdef0123456789abcdef"}`...)
}

func (p *httpPublisher) publish(ctx context.Context, n int, from uint64) (uint64, error) {
	now := time.Now().UnixNano()
	body := make([]byte, 0, n*140+2)
	body = append(body, '[')
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"type":"`...)
		body = append(body, p.typ...)
		body = append(body, `","data":`...)
		body = benchData(body, now, from+uint64(i))
		body = append(body, '}')
	}
	body = append(body, ']')
	url := p.s.urlFor(int(p.next.Add(1) - 1))
	status, out, err := postJSON(ctx, p.client, url+"/v1/events", body)
	if err != nil {
		return 0, err
	}
	if status/100 != 2 {
		return 0, fmt.Errorf("publish: status %d: %.200s", status, out)
	}
	i := bytes.LastIndex(out, []byte(`"seq":`))
	if i < 0 {
		return 0, fmt.Errorf("publish: no seq in %.200s", out)
	}
	seq, _ := fieldUint(out[i:], []byte(`"seq":`), true)
	return seq, nil
}

// runFanout connects cfg.subs subscribers, publishes at cfg.rate for
// cfg.duration and checks what every subscriber got.
func runFanout(ctx context.Context, s *server, cfg fanoutConfig) (fanoutResult, error) {
	res := fanoutResult{subs: cfg.subs, rate: cfg.rate, serverCPU: "-", serverPer: "-"}
	client := newClient(4)
	defer client.CloseIdleConnections()
	var pub publisher = &httpPublisher{client: client, s: s, typ: "bench.fanout"}
	dial := dialStream
	if s.target == targetCentrifugo {
		pub = &centrifugoPublisher{client: client, url: s.url}
		dial = dialCentrifugo
	}

	subs := make([]*subscriber, cfg.subs)
	dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
	defer dcancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, cfg.subs)
	for i := range subs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sub, err := dial(dctx, s.urlFor(i))
			if err != nil {
				errs <- err
				return
			}
			subs[i] = sub
		})
	}
	wg.Wait()
	defer func() {
		for _, sub := range subs {
			if sub != nil {
				sub.conn.CloseNow()
			}
		}
	}()
	select {
	case err := <-errs:
		return res, fmt.Errorf("subscribe: %w", err)
	default:
	}

	rctx, rcancel := context.WithTimeout(ctx, cfg.duration+cfg.grace)
	defer rcancel()
	var readers sync.WaitGroup
	cancels := make([]context.CancelFunc, len(subs))
	for i, sub := range subs {
		sctx, cancel := context.WithCancel(rctx)
		cancels[i] = cancel
		readers.Go(func() { sub.read(sctx) })
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()

	cpu0, scpu0 := selfCPU(), s.cpu()
	start := time.Now()
	published, lastSeq, err := paced(rctx, pub, cfg.rate, cfg.duration)
	pubWall := time.Since(start)
	if err != nil {
		rcancel()
		readers.Wait()
		return res, err
	}
	waitAll(rctx, subs, cancels, lastSeq)
	wall := time.Since(start)
	readers.Wait()
	cpu, scpu := selfCPU()-cpu0, s.cpu()-scpu0

	var h hist
	var events uint64
	msgs := 0
	for _, sub := range subs {
		h.merge(&sub.h)
		events += sub.events
		msgs += sub.msgs
		res.lost += sub.ck.lost(lastSeq)
		res.dup += sub.ck.dup
		res.reordered += sub.ck.reorder
		if websocket.CloseStatus(sub.err) == websocket.StatusGoingAway {
			res.goingAway++
		} else {
			res.othersBad += sub.ck.lost(lastSeq) + sub.ck.dup + sub.ck.reorder
		}
		if sub.err != nil || !sub.ck.done(lastSeq) {
			res.cut++
			if res.firstFailure == "" && sub.err != nil {
				res.firstFailure = sub.err.Error()
			}
		}
	}
	res.published = float64(published) / pubWall.Seconds()
	res.delivered = float64(events) / wall.Seconds()
	res.p50, res.p99 = h.pct(0.50), h.pct(0.99)
	res.perMsg = float64(events) / float64(max(msgs, 1))
	res.clientCPU = cpuShare(cpu, wall)
	if s.pid > 0 {
		res.serverCPU = cpuShare(scpu, wall)
		res.serverPer = perUnit(scpu, float64(events))
	}
	switch {
	case res.lost > 0 || res.dup > 0 || res.reordered > 0:
		cause := ""
		if res.firstFailure != "" {
			cause = fmt.Sprintf(" (%d cut, the first: %s)", res.cut, res.firstFailure)
		}
		res.firstFailure = fmt.Sprintf("lost %d, dup %d, reordered %d%s", res.lost, res.dup, res.reordered, cause)
	case res.cut > 0:
		if res.firstFailure == "" {
			res.firstFailure = fmt.Sprintf("%d subscribers did not finish in the grace time", res.cut)
		}
	case res.p99 > cfg.p99Limit:
		res.firstFailure = fmt.Sprintf("p99 %s ms over %s ms", ms(res.p99), ms(cfg.p99Limit))
	case res.published < 0.95*float64(cfg.rate):
		res.firstFailure = fmt.Sprintf("the publisher reached only %.0f events/s", res.published)
	default:
		res.sustained = true
	}
	return res, nil
}

// waitAll waits until every subscriber has seen every seq up to last (or
// its stream ended), or ctx ends, stopping each reader as it finishes. It polls every 2 ms: the
// readers are blocked in reads and cannot be told otherwise.
func waitAll(ctx context.Context, subs []*subscriber, cancels []context.CancelFunc, last uint64) {
	finished := make([]bool, len(subs))
	for left := len(subs); left > 0; {
		for i, sub := range subs {
			if !finished[i] && (sub.contig.Load() >= last || sub.ended.Load()) {
				finished[i] = true
				cancels[i]()
				left--
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// paced publishes rate events per second for d (open loop: every
// millisecond, what is due in one batch of at most 1,000). It returns how
// many were published and the last seq stored.
func paced(ctx context.Context, pub publisher, rate int, d time.Duration) (int, uint64, error) {
	if rate <= 0 {
		return 0, 0, errors.New("rate must be positive")
	}
	total := int(float64(rate) * d.Seconds())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	published := 0
	var lastSeq uint64
	for published < total {
		due := min(total, int(float64(rate)*time.Since(start).Seconds())+1)
		for published < due {
			n := min(due-published, 1000)
			seq, err := pub.publish(ctx, n, uint64(published)+1)
			if err != nil {
				return published, lastSeq, err
			}
			published += n
			lastSeq = seq
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return published, lastSeq, ctx.Err()
		}
	}
	return published, lastSeq, nil
}

// postJSON posts body as application/json and returns the status and the
// whole answer.
func postJSON(ctx context.Context, client *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
