package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The contract: the dispatcher drains until --shutdown-timeout and no
// longer. A receiver that never answers (with a --delivery-timeout far
// longer than the drain) must not hold run past the timeout, and what is
// left is logged with counts per webhook. A dispatcher that waited for its
// attempts instead of the deadline would take the full minute.
func TestShutdownIsNotHeldByAHangingReceiver(t *testing.T) {
	const timeout, margin, events = time.Second, 5 * time.Second, 20
	release := make(chan struct{})
	hit := make(chan struct{})
	var once sync.Once
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		once.Do(func() { close(hit) })
		select { // forever, as far as the gateway can tell
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release) // before Close: let any handler still parked return

	base, out, stop := startRun(t, "--shutdown-timeout", timeout.String(), "--delivery-timeout", "1m",
		"--retry-schedule", "50ms", "--allow-private-targets")
	id, _ := createWebhook(t, base, hang.URL, ">")
	for i := range events {
		postOne(t, base, i)
	}
	select {
	case <-hit:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging receiver got no attempt in 10s")
	}

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	var err error
	select {
	case err = <-stopped:
	case <-time.After(timeout + margin):
		// The deferred release lets the receiver answer, so that run can
		// end and the test report instead of hanging.
		t.Fatalf("run still running %v after stop: a hanging receiver holds shutdown past --shutdown-timeout %v", timeout+margin, timeout)
	}
	took := time.Since(start)
	if err != nil {
		t.Fatalf("run returned %v, want nil", err)
	}
	t.Logf("run returned %v after stop with --shutdown-timeout %v", took.Round(time.Millisecond), timeout)
	if took > timeout+margin {
		t.Fatalf("shutdown took %v: a hanging receiver held it past --shutdown-timeout %v (+%v margin)", took, timeout, margin)
	}
	if took < timeout-100*time.Millisecond {
		t.Fatalf("shutdown took %v: the drain gave up before --shutdown-timeout %v with deliveries pending", took, timeout)
	}

	var perHook, total bool
	for _, m := range logRecords(t, out.String()) {
		switch m["msg"] {
		case "undelivered at shutdown":
			n := m["not_taken"].(float64) + m["in_flight"].(float64) + m["retrying"].(float64)
			if m["webhook"] != id || n != events || m["level"] != "WARN" {
				t.Errorf("undelivered line %v, want webhook %s with %d in all at WARN", m, id, events)
			}
			perHook = true
		case "deliveries left undelivered at shutdown":
			total = m["total"].(float64) == events
		}
	}
	if !perHook || !total {
		t.Fatalf("log does not name the %d undelivered events of webhook %s:\n%s", events, id, out)
	}
}

// ingestResult is what the ingest clients of a load test saw.
type ingestResult struct {
	mu       sync.Mutex
	accepted []uint64 // every seq answered 202
	refused  int      // answers 503 (draining)
	failed   int      // requests that got no answer (after the listener closed)
}

func (r *ingestResult) add(seqs []uint64, status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted = append(r.accepted, seqs...)
	switch {
	case err != nil:
		r.failed++
	case status == http.StatusServiceUnavailable:
		r.refused++
	}
}

// postEvents posts n events of type typ (one object when n is 1, else a
// batch) and returns the seqs of a 202 answer.
func postEvents(c *http.Client, base, typ string, n int, pad string) ([]uint64, int, error) {
	var b bytes.Buffer
	if n > 1 {
		b.WriteByte('[')
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":%q,"data":{"i":%d,"pad":%q}}`, typ, i, pad)
	}
	if n > 1 {
		b.WriteByte(']')
	}
	resp, err := c.Post(base+"/v1/events", "application/json", &b)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return nil, resp.StatusCode, err
	}
	var one struct {
		Seq    uint64 `json:"seq"`
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &one); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("202 answer %s: %w", body, err)
	}
	if n == 1 {
		return []uint64{one.Seq}, resp.StatusCode, nil
	}
	seqs := make([]uint64, 0, n)
	for _, e := range one.Events {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != n {
		return nil, resp.StatusCode, fmt.Errorf("202 answer names %d seqs for %d events", len(seqs), n)
	}
	return seqs, resp.StatusCode, nil
}

// The contract: an event answered 202 is never lost to a clean shutdown
// when its receivers are healthy. SIGTERM (stop) lands while four clients
// post as fast as they can. To make the flush and the drain do real work,
// the stream client stops reading halfway (the gateway backs up behind its
// small socket buffer) and the receiver holds every request, until ingest
// answers its first 503; so a hub that closed streams without flushing, or
// a dispatcher that stopped without draining, fails this test.
func TestShutdownDuringHeavyIngestLosesNoAcceptedEvent(t *testing.T) {
	const clients, pauseAt, stopAt = 4, 1000, 4000
	pad := strings.Repeat("x", 300)

	draining := make(chan struct{}) // closed at the first 503
	var drainOnce sync.Once
	var got counts
	var deliveries atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		seq, _, ok := eventLine(body)
		if err != nil || !ok || r.Header.Get("webhook-id") == "" {
			http.Error(w, "bad delivery", http.StatusBadRequest)
			return
		}
		select { // healthy, but only once shutdown has begun
		case <-draining:
		case <-r.Context().Done():
			return
		}
		got.add(seq)
		deliveries.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	defer drainOnce.Do(func() { close(draining) })

	base, out, stop := startRun(t, "--allow-private-targets", "--buffer-size", "200000", "--stream-queue", "200000",
		"--shutdown-timeout", "60s", "--delivery-timeout", "30s", "--endpoint-concurrency", "16", "--retry-schedule", "50ms,100ms,200ms")
	createWebhook(t, base, recv.URL, ">")

	// The stream client, on every event from the start.
	var accepted atomic.Int64
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ws, err := dialStream(ctx, smallBufferDialer(), base, "after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var streamed []uint64
	var closeErr error
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		paused := false
		for {
			if !paused && accepted.Load() >= pauseAt {
				paused = true
				select { // stop reading until draining has begun
				case <-draining:
				case <-ctx.Done():
				}
			}
			_, msg, err := ws.Read(ctx)
			if err != nil {
				closeErr = err
				return
			}
			for line := range bytes.Lines(msg) {
				if seq, _, ok := eventLine(line); ok {
					streamed = append(streamed, seq)
				}
			}
		}
	}()

	// The ingest clients: singles and batches of 25, flat out, until
	// ingest refuses (503) or the listener is gone.
	var res ingestResult
	stopNow := make(chan struct{})
	var stopOnce sync.Once
	var ingest sync.WaitGroup
	for c := range clients {
		ingest.Go(func() {
			hc := &http.Client{Timeout: 30 * time.Second}
			defer hc.CloseIdleConnections()
			for i := 0; ; i++ {
				n := 1
				if (i+c)%2 == 0 {
					n = 25
				}
				seqs, status, err := postEvents(hc, base, "load.heavy", n, pad)
				res.add(seqs, status, err)
				if accepted.Add(int64(len(seqs))) >= stopAt {
					stopOnce.Do(func() { close(stopNow) })
				}
				if err != nil || status == http.StatusServiceUnavailable {
					drainOnce.Do(func() { close(draining) })
					return
				}
				if status != http.StatusAccepted {
					t.Errorf("ingest answered %d", status)
					return
				}
			}
		})
	}
	select {
	case <-stopNow:
	case <-ctx.Done():
		t.Fatal("ingest did not reach its target")
	}
	start := time.Now()
	runErr := stop() // SIGTERM with ingest in full flight
	took := time.Since(start)
	ingest.Wait()
	<-readerDone

	if runErr != nil {
		t.Fatalf("run returned %v, want nil", runErr)
	}
	slices.Sort(res.accepted)
	if len(res.accepted) < stopAt {
		t.Fatalf("only %d events accepted", len(res.accepted))
	}
	if res.refused == 0 {
		t.Errorf("no request was answered 503: stop did not land during ingest")
	}
	for i := 1; i < len(res.accepted); i++ {
		if res.accepted[i] == res.accepted[i-1] {
			t.Fatalf("seq %d answered 202 twice", res.accepted[i])
		}
	}
	last := res.accepted[len(res.accepted)-1]

	// The stream: every seq from 1, in order, exactly once, through the
	// last accepted one, then 1001.
	if websocket.CloseStatus(closeErr) != websocket.StatusGoingAway {
		t.Errorf("stream ended with %v, want 1001 going away", closeErr)
	}
	for i, seq := range streamed {
		if seq != uint64(i+1) {
			t.Fatalf("stream event %d is seq %d, want %d (lost, repeated or out of order)", i, seq, i+1)
		}
	}
	if uint64(len(streamed)) < last {
		t.Fatalf("stream got seqs 1..%d before 1001; the last event answered 202 is %d", len(streamed), last)
	}

	// The receiver: every accepted seq at least once before run returned.
	missing, dups := 0, 0
	for _, seq := range res.accepted {
		switch n := got.get(seq); {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d accepted events never reached the webhook receiver", missing, len(res.accepted))
	}
	if !strings.Contains(out.String(), `"msg":"dispatcher drained"`) {
		t.Errorf("log lacks dispatcher drained:\n%s", out)
	}
	t.Logf("accepted %d (last seq %d), refused %d, unanswered %d; streamed %d then %v; delivered %d (%d duplicates); shutdown took %v",
		len(res.accepted), last, res.refused, res.failed, len(streamed), websocket.CloseStatus(closeErr), deliveries.Load(), dups, took.Round(time.Millisecond))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}
