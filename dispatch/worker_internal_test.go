package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
		ring := store.NewRing(1000)
		pub := gateway.NewPublisher(ring)
		d := New(pub, Config{Transport: rt, AllowPrivateTargets: true, Concurrency: 4})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		defer func() { cancel(); <-done; _ = ring.Close() }()
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
		if err := d.Delete(ctx, hook.ID); err != nil {
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
