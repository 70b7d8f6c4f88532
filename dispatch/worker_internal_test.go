package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// hangable answers 204, or, while hang is set, holds every request until
// its context ends.
type hangable struct{ hang atomic.Bool }

func (h *hangable) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.hang.Load() {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (e *endpoint) workerCount() (workers, inFlight int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers, e.inFlight
}

// TestWorkersExitWhenIdleAndOnDelete: attempt workers start with work, at
// most Concurrency of them, exit after workerIdle without work, come back
// with new work, and are gone, with the endpoint goroutine, once the
// webhook is deleted mid-attempt.
func TestWorkersExitWhenIdleAndOnDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &hangable{}
		ep, publish := oneWebhook(t, Config{Transport: rt, Concurrency: 4})

		publish(50)
		if w, f := ep.workerCount(); w < 1 || w > 4 || f != 0 {
			t.Fatalf("after 50 deliveries: %d workers, %d in flight; want 1 to 4 idle workers", w, f)
		}
		time.Sleep(workerIdle)
		synctest.Wait()
		if w, _ := ep.workerCount(); w != 0 {
			t.Fatalf("%d workers after %s idle, want 0", w, workerIdle)
		}
		publish(10)
		if s := ep.stats(); s.Succeeded != 60 {
			t.Fatalf("after the workers came back: %+v", s)
		}

		rt.hang.Store(true)
		publish(10)
		if w, f := ep.workerCount(); w != 4 || f != 4 {
			t.Fatalf("hanging receiver: %d workers, %d in flight; want 4 and 4", w, f)
		}
		if err := ep.d.Delete(context.Background(), ep.id); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if w, _ := ep.workerCount(); w != 0 {
			t.Fatalf("%d workers after Delete, want 0", w)
		}
		select {
		case <-ep.drained: // closed when run returned, after its workers
		default:
			t.Fatal("the endpoint goroutine is still running after Delete")
		}
	})
}

// gated answers 204, or 500 while fail is positive (one per request);
// while gate is set, every request first waits for it to close.
type gated struct {
	mu   sync.Mutex
	gate chan struct{}
	fail atomic.Int32
}

func (g *gated) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	code := http.StatusNoContent
	if g.fail.Add(-1) >= 0 {
		code = http.StatusInternalServerError
	}
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestResultsBookedByWorkersAndByTheEndpoint: on the log's cursor a worker
// books the result of an attempt launched alone (one event at a time), and
// hands those of overlapping attempts to the endpoint goroutine, here
// while every slot is taken; no result is lost between the two, a retry
// booked by a worker falls due and is delivered, and nothing stays in
// flight.
func TestResultsBookedByWorkersAndByTheEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &gated{}
		ep, publish := oneWebhook(t, Config{Transport: rt, Concurrency: 2,
			Schedule: []time.Duration{time.Second}, Rand: func() float64 { return 0.5 }})
		check := func(when string, succeeded uint64, inFlight int, slotWait bool) {
			t.Helper()
			s := ep.stats()
			if s.Succeeded != succeeded || s.InFlight != inFlight || ep.slotWait.Load() != slotWait {
				t.Fatalf("%s: %+v, slot wait %v; want %d succeeded, %d in flight, slot wait %v",
					when, s, ep.slotWait.Load(), succeeded, inFlight, slotWait)
			}
		}

		for range 5 { // one at a time: the workers book them
			publish(1)
		}
		check("one at a time", 5, 0, false)

		gate := make(chan struct{})
		rt.mu.Lock()
		rt.gate = gate
		rt.mu.Unlock()
		publish(6)
		check("receiver held", 5, 2, true)
		rt.mu.Lock()
		rt.gate = nil
		rt.mu.Unlock()
		close(gate) // the results go to the endpoint goroutine, which takes the rest
		synctest.Wait()
		check("receiver released", 11, 0, false)

		rt.fail.Store(1)
		publish(1)
		if s := ep.stats(); s.Retrying != 1 || s.InFlight != 0 {
			t.Fatalf("after a failed attempt: %+v, want 1 retrying", s)
		}
		time.Sleep(2 * time.Second) // past the 1 s schedule (jitter 0.5)
		synctest.Wait()
		check("after the retry", 12, 0, false)
		if s := ep.stats(); s.Retrying != 0 || s.Failed != 0 || s.InSystem != 0 {
			t.Fatalf("after the retry: %+v", s)
		}
	})
}

// oneWebhook runs, in t's synctest bubble until t ends, a dispatcher with
// cfg (private targets allowed) over a ring, with one webhook taking every
// event; it returns the webhook's endpoint and a publish of n events that
// returns once the bubble is idle again.
func oneWebhook(t *testing.T, cfg Config) (*endpoint, func(n int)) {
	t.Helper()
	ring := store.NewRing(1000)
	pub := gateway.NewPublisher(ring)
	cfg.AllowPrivateTargets = true
	d := New(pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = ring.Close() })
	hook, err := d.Create(ctx, store.Webhook{URL: "http://receiver.test/hook", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := d.local(hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		evs := make([]store.Event, n)
		for i := range evs {
			evs[i] = store.Event{Type: "order.created", Data: json.RawMessage(`{}`)}
		}
		if _, err := pub.Publish(context.Background(), evs, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
	}
	return ep, publish
}
