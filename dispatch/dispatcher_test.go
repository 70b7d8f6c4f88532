package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeEndpoint is an http.RoundTripper standing in for a receiver inside a
// synctest bubble (which cannot do real network I/O). It records the fake
// time of every attempt and answers as answer says.
type fakeEndpoint struct {
	mu     sync.Mutex
	times  []time.Time
	reqs   []*http.Request
	answer func(n int) (int, http.Header)
}

func (f *fakeEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.reqs = append(f.reqs, r)
	n := len(f.times)
	f.mu.Unlock()
	code, h := f.answer(n)
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
}

// gaps returns the delays between consecutive attempts.
func (f *fakeEndpoint) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.times); i++ {
		out = append(out, f.times[i].Sub(f.times[i-1]))
	}
	return out
}

func (f *fakeEndpoint) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

// bubble is a dispatcher running in a synctest bubble over a fake endpoint.
type bubble struct {
	pub  *gateway.Publisher
	disp *dispatch.Dispatcher
	hook store.Webhook
	reg  *prometheus.Registry
}

// startBubble starts a dispatcher with one webhook; stop it with the
// returned func before the bubble ends.
func startBubble(t *testing.T, ep *fakeEndpoint, cfg dispatch.Config) (*bubble, func()) {
	t.Helper()
	ring := store.NewRing(1000)
	pub := gateway.NewPublisher(ring)
	reg := prometheus.NewRegistry()
	cfg.Transport, cfg.Registerer, cfg.AllowPrivateTargets = ep, reg, true
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0.5 } // no jitter
	}
	d := dispatch.New(pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	hook, err := d.Create(ctx, store.Webhook{URL: "http://receiver.test/hook", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return &bubble{pub: pub, disp: d, hook: hook, reg: reg}, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = ring.Close()
	}
}

func (b *bubble) publish(t *testing.T, n int) {
	t.Helper()
	batch := make([]store.Event, n)
	for i := range batch {
		batch[i] = store.Event{Type: "order.created", Data: json.RawMessage(`{}`)}
	}
	if _, err := b.pub.Publish(context.Background(), batch, nil); err != nil {
		t.Fatal(err)
	}
}

func (b *bubble) only(t *testing.T) store.Delivery {
	t.Helper()
	dls, err := b.disp.Deliveries(b.hook.ID, "", 10, "")
	if err != nil || len(dls) != 1 {
		t.Fatalf("deliveries = %v, %v; want one", dls, err)
	}
	return dls[0]
}

// TestBackoffFollowsSchedule: with jitter pinned to 1.0, the attempts come
// exactly on the default schedule, and each waiting retry costs only a heap
// entry (no attempt while it waits).
func TestBackoffFollowsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{answer: func(n int) (int, http.Header) {
			if n <= 3 {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, nil
		}}
		b, stop := startBubble(t, ep, dispatch.Config{})
		defer stop()
		b.publish(t, 1)
		synctest.Wait()
		if ep.count() != 1 {
			t.Fatalf("%d attempts at once, want 1", ep.count())
		}
		if d := b.only(t); d.Status != store.DeliveryRetrying || d.Attempts != 1 || d.NextAttemptAt.Sub(d.LastAttemptAt) != 5*time.Second {
			t.Fatalf("after attempt 1: %+v", d)
		}
		if s := b.disp.Stats(b.hook.ID); s.Retrying != 1 || s.InFlight != 0 || s.InSystem != 1 {
			t.Fatalf("stats while waiting: %+v", s)
		}
		time.Sleep(time.Hour) // fake time: the bubble runs the whole schedule
		synctest.Wait()
		want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}
		if got := ep.gaps(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("gaps = %v, want %v", got, want)
		}
		if d := b.only(t); d.Status != store.DeliverySucceeded || d.Attempts != 4 || !d.NextAttemptAt.IsZero() {
			t.Fatalf("final: %+v", d)
		}
		if s := b.disp.Stats(b.hook.ID); s.Succeeded != 1 || s.InSystem != 0 || s.Retrying != 0 {
			t.Fatalf("stats after: %+v", s)
		}
	})
}

func TestBackoffJitterBounds(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{0, 8 * time.Second}, {0.75, 11 * time.Second}} {
		synctest.Test(t, func(t *testing.T) {
			ep := &fakeEndpoint{answer: func(n int) (int, http.Header) {
				if n == 1 {
					return http.StatusBadGateway, nil
				}
				return http.StatusNoContent, nil
			}}
			b, stop := startBubble(t, ep, dispatch.Config{Schedule: []time.Duration{10 * time.Second}, Rand: func() float64 { return tc.r }})
			defer stop()
			b.publish(t, 1)
			time.Sleep(time.Minute)
			synctest.Wait()
			if got := ep.gaps(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("r=%v: gaps %v, want [%s]", tc.r, got, tc.want)
			}
		})
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name, retryAfter string
		status           int
		want             time.Duration
	}{
		{"longer seconds", "120", http.StatusTooManyRequests, 2 * time.Minute},
		{"shorter ignored", "1", http.StatusServiceUnavailable, 5 * time.Second},
		{"capped at the longest delay", "86400", http.StatusServiceUnavailable, time.Hour},
		{"only on 429/503", "120", http.StatusInternalServerError, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{answer: func(n int) (int, http.Header) {
					if n == 1 {
						return tc.status, http.Header{"Retry-After": {tc.retryAfter}}
					}
					return http.StatusOK, nil
				}}
				b, stop := startBubble(t, ep, dispatch.Config{Schedule: []time.Duration{5 * time.Second, time.Hour}})
				defer stop()
				b.publish(t, 1)
				time.Sleep(2 * time.Hour)
				synctest.Wait()
				if got := ep.gaps(); len(got) != 1 || got[0] != tc.want {
					t.Fatalf("gaps %v, want [%s]", got, tc.want)
				}
			})
		})
	}
}

// TestMaxRetryingStopsIntake: at --max-retrying the endpoint takes no new
// events (they wait in the log, shown as lag) until retries drain.
func TestMaxRetryingStopsIntake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		healthy := false
		var mu sync.Mutex
		ep := &fakeEndpoint{answer: func(int) (int, http.Header) {
			mu.Lock()
			defer mu.Unlock()
			if healthy {
				return http.StatusOK, nil
			}
			return http.StatusInternalServerError, nil
		}}
		b, stop := startBubble(t, ep, dispatch.Config{MaxRetrying: 3, Concurrency: 2, Schedule: []time.Duration{time.Minute}})
		defer stop()
		b.publish(t, 10)
		synctest.Wait()
		s := b.disp.Stats(b.hook.ID)
		if s.Retrying != 3 || s.InFlight != 0 || s.Lag != 10-uint64(ep.count()) || ep.count() > 4 {
			t.Fatalf("at the cap: %+v after %d attempts", s, ep.count())
		}
		mu.Lock()
		healthy = true
		mu.Unlock()
		time.Sleep(time.Hour)
		synctest.Wait()
		if s := b.disp.Stats(b.hook.ID); s.Succeeded != 10 || s.Lag != 0 || s.Retrying != 0 || s.InSystem != 0 {
			t.Fatalf("after the retries drained: %+v", s)
		}
	})
}

// TestDeliveryLogBounded: each webhook keeps its newest deliveries only;
// the dropped ones are counted.
func TestDeliveryLogBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{answer: func(int) (int, http.Header) { return http.StatusOK, nil }}
		b, stop := startBubble(t, ep, dispatch.Config{DeliveryLogSize: 5, Concurrency: 1})
		defer stop()
		b.publish(t, 8)
		synctest.Wait()
		dls, _ := b.disp.Deliveries(b.hook.ID, "", 100, "")
		if len(dls) != 5 || dls[0].EventSeq != 8 || dls[4].EventSeq != 4 {
			t.Fatalf("log holds %d, newest %d", len(dls), dls[0].EventSeq)
		}
		if got := counterValue(t, b.reg, "eventgate_webhook_delivery_log_dropped_total"); got != 3 {
			t.Fatalf("dropped = %v, want 3", got)
		}
		if dls, _ := b.disp.Deliveries(b.hook.ID, store.DeliverySucceeded, 2, ""); len(dls) != 2 || dls[0].EventSeq != 8 {
			t.Fatalf("limit 2: %+v", dls)
		}
	})
}

// TestShutdownWaitsForDueRetries: a retry due before the drain deadline is
// delivered during Shutdown; one due after it is reported, not awaited.
func TestShutdownWaitsForDueRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{answer: func(n int) (int, http.Header) {
			if n == 1 {
				return http.StatusServiceUnavailable, nil
			}
			return http.StatusOK, nil
		}}
		b, stop := startBubble(t, ep, dispatch.Config{Schedule: []time.Duration{5 * time.Second}})
		defer stop()
		b.publish(t, 1)
		synctest.Wait()
		_ = b.pub.Shutdown(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := b.disp.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if d := b.only(t); d.Status != store.DeliverySucceeded || time.Since(start) != 5*time.Second {
			t.Fatalf("after %s: %+v", time.Since(start), d)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{answer: func(int) (int, http.Header) { return http.StatusServiceUnavailable, nil }}
		b, stop := startBubble(t, ep, dispatch.Config{Schedule: []time.Duration{time.Hour}})
		defer stop()
		b.publish(t, 1)
		synctest.Wait()
		_ = b.pub.Shutdown(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := b.disp.Shutdown(ctx); err != nil || time.Since(start) != 0 {
			t.Fatalf("Shutdown took %s: %v; the retry is due after the deadline", time.Since(start), err)
		}
	})
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// gatedUpdates is a registry whose updates wait until gate is closed: a
// slow registry (a NATS key-value bucket across a round trip).
type gatedUpdates struct {
	store.Webhooks
	gate chan struct{}
}

func (g *gatedUpdates) Update(ctx context.Context, id string, fn func(*store.Webhook) error) (store.Webhook, error) {
	<-g.gate
	return g.Webhooks.Update(ctx, id, fn)
}

// TestGoneDisableShowsBeforeItIsStored: the delivery whose 410 disabled
// the webhook is listed at once; while the registry is still storing the
// disable, Get and List already show the webhook disabled, not enabled
// beside a failed delivery that says it was disabled.
func TestGoneDisableShowsBeforeItIsStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{answer: func(int) (int, http.Header) { return http.StatusGone, nil }}
		hooks := &gatedUpdates{Webhooks: &store.MemWebhooks{}, gate: make(chan struct{})}
		b, stop := startBubble(t, ep, dispatch.Config{Webhooks: hooks})
		defer stop()
		b.publish(t, 1)
		synctest.Wait() // attempted, failed, and the disable waits at the registry
		if d := b.only(t); d.Status != store.DeliveryFailed {
			t.Fatalf("delivery %+v, want failed", d)
		}
		check := func(when string) {
			t.Helper()
			w, err := b.disp.Get(context.Background(), b.hook.ID)
			if err != nil || w.Enabled || w.DisabledReason != dispatch.ReasonGone {
				t.Fatalf("%s: Get = %+v, %v; want disabled for the 410", when, w, err)
			}
			ws, err := b.disp.List(context.Background())
			if err != nil || len(ws) != 1 || ws[0].Enabled {
				t.Fatalf("%s: List = %+v, %v; want it disabled", when, ws, err)
			}
		}
		check("while the registry stores it")
		if stored, _ := hooks.Get(context.Background(), b.hook.ID); !stored.Enabled {
			t.Fatal("the registry has the disable already: the test shows nothing")
		}
		close(hooks.gate)
		synctest.Wait()
		check("once stored")
		if stored, _ := hooks.Get(context.Background(), b.hook.ID); stored.Enabled {
			t.Fatal("the disable was never stored")
		}
	})
}
