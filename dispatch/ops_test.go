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
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// hosts is an http.RoundTripper standing in for several receivers inside
// a synctest bubble, told apart by URL host. It records every request's
// headers and body.
type hosts struct {
	mu     sync.Mutex
	answer map[string]func(r *http.Request) int
	got    map[string][]recorded
}

type recorded struct {
	at     time.Time
	header http.Header
	body   []byte
}

func (h *hosts) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	h.mu.Lock()
	h.got[r.URL.Host] = append(h.got[r.URL.Host], recorded{at: time.Now(), header: r.Header.Clone(), body: body})
	answer := h.answer[r.URL.Host]
	h.mu.Unlock()
	code := http.StatusOK
	if answer != nil {
		code = answer(r)
	}
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (h *hosts) requests(host string) []recorded {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recorded(nil), h.got[host]...)
}

// rig is a dispatcher in a synctest bubble over hosts.
type rig struct {
	ring *store.Ring
	pub  *gateway.Publisher
	disp *dispatch.Dispatcher
	reg  *prometheus.Registry
	net  *hosts
}

func startRig(t *testing.T, cfg dispatch.Config) (*rig, func()) {
	t.Helper()
	ring := store.NewRing(1000)
	pub := gateway.NewPublisher(ring)
	reg := prometheus.NewRegistry()
	net := &hosts{answer: map[string]func(*http.Request) int{}, got: map[string][]recorded{}}
	cfg.Transport, cfg.Registerer, cfg.AllowPrivateTargets = net, reg, true
	cfg.Rand = func() float64 { return 0.5 }
	d := dispatch.New(pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return &rig{ring: ring, pub: pub, disp: d, reg: reg, net: net}, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = ring.Close()
	}
}

func (r *rig) hook(t *testing.T, w store.Webhook) store.Webhook {
	t.Helper()
	w.Enabled = true
	h, err := r.disp.Create(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (r *rig) publish(t *testing.T, typ string) {
	t.Helper()
	if _, err := r.pub.Publish(context.Background(), []store.Event{{Type: typ, Data: json.RawMessage(`{}`)}}, nil); err != nil {
		t.Fatal(err)
	}
}

// events returns every stored event of the given type, decoded.
func (r *rig) events(t *testing.T, typ string) []map[string]any {
	t.Helper()
	f, _ := store.ParseFilter([]string{typ})
	page, err := r.ring.Read(context.Background(), 0, 1000, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, rec := range page.Records {
		var v map[string]any
		if err := json.Unmarshal(rec.JSON, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestRotationGraceExpires: both secrets sign until the grace ends, to
// the second; then only the new one, and the registry forgets the old.
func TestRotationGraceExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{})
		defer stop()
		const oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		h := r.hook(t, store.Webhook{URL: "http://a.test/hook", Secret: oldSecret})
		newSecret, expires, err := r.disp.RotateSecret(context.Background(), h.ID, time.Hour)
		if err != nil || !expires.Equal(time.Now().Add(time.Hour)) {
			t.Fatalf("RotateSecret: %v, expires %v", err, expires)
		}
		old, _ := signature.ParseSecret(oldSecret)
		fresh, _ := signature.ParseSecret(newSecret)
		verify := func(s signature.Secret, rec recorded) bool {
			return signature.Verify([]signature.Secret{s}, rec.header, rec.body, rec.at, time.Minute) == nil
		}

		time.Sleep(time.Hour - time.Second)
		r.publish(t, "a.b")
		synctest.Wait()
		got := r.net.requests("a.test")
		if len(got) != 1 || !verify(old, got[0]) || !verify(fresh, got[0]) {
			t.Fatalf("a second before the end of the grace: %d requests, old %v new %v", len(got), verify(old, got[0]), verify(fresh, got[0]))
		}
		if w, _ := r.disp.Get(context.Background(), h.ID); w.PreviousSecret != oldSecret {
			t.Fatal("the registry lost the previous secret during the grace")
		}

		time.Sleep(time.Second)
		synctest.Wait() // the endpoint's timer fires at the end of the grace
		if w, _ := r.disp.Get(context.Background(), h.ID); w.PreviousSecret != "" || !w.PreviousExpires.IsZero() || w.Secret != newSecret {
			t.Fatalf("after the grace the registry holds previous %q", w.PreviousSecret)
		}
		r.publish(t, "a.b")
		synctest.Wait()
		got = r.net.requests("a.test")
		if len(got) != 2 || verify(old, got[1]) || !verify(fresh, got[1]) || strings.Contains(got[1].header.Get("webhook-signature"), " ") {
			t.Fatalf("after the grace: signature %q", got[1].header.Get("webhook-signature"))
		}
	})
}

// TestAutoDisableAfterContinuousFailure: under a fake clock, a webhook
// whose every attempt fails is disabled at the first failure once
// --disable-after has passed since the streak began, with the reason kept
// and an eventgate.webhook.disabled event that a second webhook receives.
// A success in between restarts the streak.
func TestAutoDisableAfterContinuousFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{
			DisableAfter: 3 * time.Hour,
			Schedule:     []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour},
		})
		defer stop()
		var mu sync.Mutex
		healthy := true
		r.net.answer["bad.test"] = func(*http.Request) int {
			mu.Lock()
			defer mu.Unlock()
			if healthy {
				return http.StatusOK
			}
			return http.StatusInternalServerError
		}
		bad := r.hook(t, store.Webhook{URL: "http://bad.test/hook", Types: []string{"order.>"}})
		watcher := r.hook(t, store.Webhook{URL: "http://watch.test/hook", Types: []string{"eventgate.>"}})

		mu.Lock()
		healthy = false
		mu.Unlock()
		r.publish(t, "order.created") // fails at 0h, 1h, 2h, ...
		time.Sleep(150 * time.Minute)
		synctest.Wait()
		if w, _ := r.disp.Get(context.Background(), bad.ID); !w.Enabled {
			t.Fatal("disabled before --disable-after")
		}
		time.Sleep(time.Hour) // the 3h attempt fails: 3h of failure
		synctest.Wait()
		w, _ := r.disp.Get(context.Background(), bad.ID)
		if w.Enabled || w.DisabledReason != "every attempt failed for 3h0m0s" {
			t.Fatalf("after 3h of failure: enabled %v, reason %q", w.Enabled, w.DisabledReason)
		}
		if n := len(r.net.requests("bad.test")); n != 4 {
			t.Fatalf("%d attempts, want 4 (0h..3h)", n)
		}
		evs := r.events(t, "eventgate.webhook.disabled")
		if len(evs) != 1 || evs[0]["subject"] != bad.ID || evs[0]["source"] != "/eventgate" {
			t.Fatalf("disabled events = %v", evs)
		}
		if data := evs[0]["data"].(map[string]any); data["webhook_id"] != bad.ID || data["reason"] != w.DisabledReason {
			t.Fatalf("data = %v", data)
		}
		got := r.net.requests("watch.test")
		if len(got) == 0 || !strings.Contains(string(got[len(got)-1].body), `"type":"eventgate.webhook.disabled"`) {
			t.Fatalf("the watcher got %d requests, not the disabled event", len(got))
		}
		if got := counterVecValue(t, r.reg, "eventgate_webhook_auto_disabled_total", "failing"); got != 1 {
			t.Fatalf("auto-disabled counter = %v", got)
		}

		// Re-enabled: a new streak; one success in it restarts the count.
		on := true
		if _, resumed, err := r.disp.Update(context.Background(), bad.ID, dispatch.WebhookUpdate{Enabled: &on}); err != nil || resumed.From != "cursor" {
			t.Fatalf("re-enable: %v %+v", err, resumed)
		}
		r.publish(t, "order.created") // fails at R, R+1h, ...: a new streak from R
		synctest.Wait()
		time.Sleep(2*time.Hour - time.Minute)
		mu.Lock()
		healthy = true
		mu.Unlock()
		r.publish(t, "order.created") // succeeds: the streak ends
		synctest.Wait()
		mu.Lock()
		healthy = false
		mu.Unlock()
		r.publish(t, "order.created") // fails: a new streak from R+2h
		synctest.Wait()
		time.Sleep(150 * time.Minute) // failures up to R+4h: 4h since R, 2h since the success
		synctest.Wait()
		if w, _ := r.disp.Get(context.Background(), bad.ID); !w.Enabled {
			t.Fatalf("disabled although a success came within the last %s: %q", 3*time.Hour, w.DisabledReason)
		}
		_ = watcher
	})
}

// TestNoDeliveryLoops: two webhooks that fail everything. Each failed
// delivery records eventgate.delivery.failed; it is never delivered to
// the webhook it describes, and failing to deliver it records nothing
// more, so the log settles at three events.
func TestNoDeliveryLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{Schedule: []time.Duration{time.Minute}})
		defer stop()
		fail := func(*http.Request) int { return http.StatusInternalServerError }
		r.net.answer["a.test"], r.net.answer["b.test"] = fail, fail
		a := r.hook(t, store.Webhook{URL: "http://a.test/hook"})
		b := r.hook(t, store.Webhook{URL: "http://b.test/hook"})
		r.publish(t, "order.created")
		time.Sleep(24 * time.Hour)
		synctest.Wait()

		all := r.events(t, ">")
		if len(all) != 3 {
			t.Fatalf("log holds %d events, want 3 (the event, one delivery.failed per webhook): %v", len(all), all)
		}
		for _, ev := range all[1:] {
			if ev["type"] != "eventgate.delivery.failed" {
				t.Fatalf("event %v", ev)
			}
			data := ev["data"].(map[string]any)
			if data["event_seq"] != 1.0 || data["attempts"] != 2.0 || data["last_status_code"] != 500.0 || data["webhook_id"] != ev["subject"] {
				t.Fatalf("data = %v", data)
			}
		}
		for host, self := range map[string]string{"a.test": a.ID, "b.test": b.ID} {
			for _, req := range r.net.requests(host) {
				var ev struct {
					Subject string `json:"subject"`
				}
				_ = json.Unmarshal(req.body, &ev)
				if ev.Subject == self {
					t.Fatalf("%s received an event about itself: %s", host, req.body)
				}
			}
			// The event (2 attempts) and the other webhook's failure (2).
			if n := len(r.net.requests(host)); n != 4 {
				t.Fatalf("%s got %d requests, want 4", host, n)
			}
		}
		if got := counterVecValue(t, r.reg, "eventgate_operational_events_total", "eventgate.delivery.failed"); got != 2 {
			t.Fatalf("operational events = %v", got)
		}
	})
}

func counterVecValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRateLimitIdleThenBurst: a limited endpoint that spent its tokens
// while the log was empty still wakes for the next event (it waits on
// its timer, then on the log), and attempts are spaced by the rate.
func TestRateLimitIdleThenBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{})
		defer stop()
		r.hook(t, store.Webhook{URL: "http://slow.test/hook", RateLimit: 2})
		r.publish(t, "a.b") // takes the only token (burst 1 at 2/s)
		synctest.Wait()
		time.Sleep(10 * time.Second)
		for range 3 {
			r.publish(t, "a.b")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got := r.net.requests("slow.test")
		if len(got) != 4 {
			t.Fatalf("%d requests, want 4", len(got))
		}
		if d1, d2 := got[2].at.Sub(got[1].at), got[3].at.Sub(got[2].at); d1 != 500*time.Millisecond || d2 != 500*time.Millisecond {
			t.Fatalf("spacing %s, %s; want 500ms at 2/s", d1, d2)
		}
	})
}

// TestRateLimitMinimum: a webhook at MinRateLimit sends one attempt
// every 1000 s and otherwise sleeps on its timer (a handful of waits, no
// spinning); anything slower is refused on create and update.
func TestRateLimitMinimum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{})
		defer stop()
		h := r.hook(t, store.Webhook{URL: "http://slowest.test/hook", RateLimit: dispatch.MinRateLimit})
		start := time.Now()
		for range 3 {
			r.publish(t, "a.b")
		}
		time.Sleep(999 * time.Second)
		synctest.Wait()
		if n := len(r.net.requests("slowest.test")); n != 1 {
			t.Fatalf("%d requests in the first 999 s, want 1", n)
		}
		time.Sleep(1002 * time.Second)
		synctest.Wait()
		got := r.net.requests("slowest.test")
		if len(got) != 3 || got[1].at.Sub(start) != 1000*time.Second || got[2].at.Sub(start) != 2000*time.Second {
			t.Fatalf("%d requests, want 3 at 0 s, 1000 s, 2000 s", len(got))
		}
		if waits := counterValue(t, r.reg, "eventgate_webhook_rate_limited_waits_total"); waits > 10 {
			t.Fatalf("%v rate-limited waits for 2 spaced attempts: the endpoint spins", waits)
		}
		for _, rate := range []float64{1e-11, 1e-300, dispatch.MinRateLimit / 2, -1, dispatch.MaxRateLimit + 1} {
			if _, err := r.disp.Create(context.Background(), store.Webhook{URL: "http://x.test/", RateLimit: rate}); err == nil {
				t.Errorf("Create with rate_limit %g accepted", rate)
			}
			if _, _, err := r.disp.Update(context.Background(), h.ID, dispatch.WebhookUpdate{RateLimit: &rate}); err == nil {
				t.Errorf("Update to rate_limit %g accepted", rate)
			}
		}
	})
}

// TestRateLimitStoredBelowMinimum: a webhook stored by an older version
// with a rate_limit below MinRateLimit still loads (its next token is at
// most a day away, never in the past) and can be patched to a valid rate.
func TestRateLimitStoredBelowMinimum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := &store.MemWebhooks{}
		now := time.Now()
		w := store.Webhook{ID: gateway.NewID("wh_", now), URL: "http://old.test/hook", Types: []string{">"}, Enabled: true,
			Secret: signature.NewSecret(), RateLimit: 1e-11, CreatedAt: now, UpdatedAt: now}
		if err := reg.Create(context.Background(), w); err != nil {
			t.Fatal(err)
		}
		r, stop := startRig(t, dispatch.Config{Webhooks: reg})
		defer stop()
		synctest.Wait() // loaded: delivery starts after the newest event
		for range 3 {
			r.publish(t, "a.b")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := len(r.net.requests("old.test")); n != 1 {
			t.Fatalf("%d requests in the first hour, want 1 (the burst)", n)
		}
		if waits := counterValue(t, r.reg, "eventgate_webhook_rate_limited_waits_total"); waits > 10 {
			t.Fatalf("%v rate-limited waits in an hour: the endpoint spins", waits)
		}
		rate := 1.0
		if _, _, err := r.disp.Update(context.Background(), w.ID, dispatch.WebhookUpdate{RateLimit: &rate}); err != nil {
			t.Fatalf("Update to rate_limit 1: %v", err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := len(r.net.requests("old.test")); n != 3 {
			h, _ := r.disp.Get(context.Background(), w.ID)
			t.Fatalf("%d requests after the patch, want 3; %+v %+v", n, r.disp.Stats(w.ID), h)
		}
	})
}

// TestDeliveryTailDropsSlowSubscriber: a tail that does not read is cut
// off once TailBuffer attempts wait for it; the endpoint never blocks on
// it, and a reading tail keeps going. Run's end closes the rest.
func TestDeliveryTailDropsSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, stop := startRig(t, dispatch.Config{})
		h := r.hook(t, store.Webhook{URL: "http://a.test/hook"})
		slow, err := r.disp.TailDeliveries(h.ID)
		if err != nil {
			t.Fatal(err)
		}
		live, err := r.disp.TailDeliveries(h.ID)
		if err != nil {
			t.Fatal(err)
		}
		var seen []dispatch.Attempt
		done := make(chan struct{})
		go func() {
			defer close(done)
			for a := range live.C {
				seen = append(seen, a)
			}
		}()
		for range dispatch.TailBuffer + 10 {
			r.publish(t, "a.b")
			synctest.Wait() // the live reader drains before the next attempt; the slow one never does
		}
		n := 0
		for range slow.C {
			n++
		}
		if !slow.Dropped() || n != dispatch.TailBuffer {
			t.Fatalf("slow tail: dropped %v after %d attempts", slow.Dropped(), n)
		}
		if got := counterValue(t, r.reg, "eventgate_webhook_tail_dropped_total"); got != 1 {
			t.Fatalf("dropped counter = %v", got)
		}
		if s := r.disp.Stats(h.ID); s.Succeeded != dispatch.TailBuffer+10 {
			t.Fatalf("the endpoint was held back: %+v", s)
		}
		stop() // Run's end closes the live tail
		<-done
		if len(seen) != dispatch.TailBuffer+10 || live.Dropped() || seen[0].Attempt != 1 || seen[0].Status != store.DeliverySucceeded {
			t.Fatalf("live tail saw %d (dropped %v): %+v", len(seen), live.Dropped(), seen[0])
		}
		live.Close() // idempotent after the end
		if _, err := r.disp.TailDeliveries(h.ID); err == nil {
			t.Fatal("a tail was opened after Run ended")
		}
	})
}
