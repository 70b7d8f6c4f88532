package dispatch_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// goroutineID returns the id of the calling goroutine, from the first line
// of its stack trace ("goroutine 42 [running]:"). Tests only.
func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := bytes.Fields(buf[:n])
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// byGoroutine is an http.RoundTripper that answers 204 and records which
// goroutine made each request (a round tripper runs on the goroutine that
// called Client.Do).
type byGoroutine struct {
	mu  sync.Mutex
	ids map[string]int
	n   int
}

func (b *byGoroutine) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.ids[goroutineID()]++
	b.n++
	b.mu.Unlock()
	return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestAttemptsReuseWorkers: an endpoint's attempts run on at most
// Concurrency long-lived workers, not on a goroutine each.
func TestAttemptsReuseWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &byGoroutine{ids: make(map[string]int)}
		ring := store.NewRing(1000)
		pub := gateway.NewPublisher(ring)
		d := dispatch.New(pub, dispatch.Config{Transport: rt, AllowPrivateTargets: true, Concurrency: 3})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		defer func() { cancel(); <-done; _ = ring.Close() }()
		hook, err := d.Create(ctx, store.Webhook{URL: "http://receiver.test/hook", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 { // in several batches: the workers wait between them
			publishN(t, pub, 20)
			synctest.Wait()
		}
		if s := d.Stats(hook.ID); s.Succeeded != 200 {
			t.Fatalf("stats: %+v, want 200 succeeded", s)
		}
		rt.mu.Lock()
		defer rt.mu.Unlock()
		if rt.n != 200 || len(rt.ids) < 1 || len(rt.ids) > 3 {
			t.Fatalf("%d attempts ran on %d goroutines, want 200 on 1 to 3: %v", rt.n, len(rt.ids), rt.ids)
		}
	})
}

// TestSlowEndpointDoesNotHoldUpAnother: a receiver that never answers
// holds its own webhook's workers only; another webhook on the same
// dispatcher gets every event meanwhile. Run then stops with the hung
// attempts cancelled (goleak checks that no worker is left).
func TestSlowEndpointDoesNotHoldUpAnother(t *testing.T) {
	const n = 200
	var hung atomic.Int64
	arrived := make(chan struct{}, n) // one per request the slow receiver got
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		arrived <- struct{}{}
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going
		select {
		case <-r.Context().Done(): // the dispatcher gave up on it
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release) // before Close, which waits for the handlers
	fast := &countingReceiver{done: make(chan struct{})}
	fast.want.Store(n)
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()

	ring := store.NewRing(1000)
	pub := gateway.NewPublisher(ring)
	d := dispatch.New(pub, dispatch.Config{AllowPrivateTargets: true, Concurrency: 2, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { _ = ring.Close() }()
	slowHook, err := d.Create(ctx, store.Webhook{URL: slow.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, store.Webhook{URL: fastSrv.URL, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, n)
	for i := range 2 { // both slots of the slow webhook reach its receiver
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			t.Fatalf("the slow receiver got %d requests, want 2 (one per slot)", i)
		}
	}
	select {
	case <-fast.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the fast receiver got %d of %d while the slow one hung", fast.n.Load(), n)
	}
	if s := d.Stats(slowHook.ID); s.InFlight != 2 || s.Succeeded != 0 {
		t.Fatalf("slow webhook: %+v, want its 2 slots in flight", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if h := hung.Load(); h != 2 {
		t.Fatalf("the slow receiver saw %d requests, want Concurrency (2)", h)
	}
}

// TestAttemptAuthAndErrors: an attempt sends Basic auth from the URL's
// userinfo (a custom Authorization header wins), and a failed attempt's
// last_error quotes the URL with its password hidden, as net/http's
// client does.
func TestAttemptAuthAndErrors(t *testing.T) {
	auth := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there now

	ring := store.NewRing(100)
	pub := gateway.NewPublisher(ring)
	d := dispatch.New(pub, dispatch.Config{AllowPrivateTargets: true, Schedule: []time.Duration{time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done; _ = ring.Close() }()
	userURL := strings.Replace(srv.URL, "http://", "http://ann:s3cret@", 1)
	if _, err := d.Create(ctx, store.Webhook{URL: userURL, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, store.Webhook{URL: userURL, Enabled: true, Headers: map[string]string{"authorization": "Bearer tok"}}); err != nil {
		t.Fatal(err)
	}
	bad, err := d.Create(ctx, store.Webhook{URL: strings.Replace(closed.URL, "http://", "http://ann:s3cret@", 1), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	tail, err := d.TailDeliveries(bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	publishN(t, pub, 1)
	got := map[string]bool{}
	for range 2 {
		select {
		case a := <-auth:
			got[a] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v arrived", got)
		}
	}
	if !got["Basic YW5uOnMzY3JldA=="] || !got["Bearer tok"] {
		t.Fatalf("Authorization headers %v, want Basic ann:s3cret and the custom Bearer tok", got)
	}
	select {
	case a, ok := <-tail.C:
		if !ok || !strings.HasPrefix(a.Error, `connection error: Post "http://ann:***@`) || strings.Contains(a.Error, "s3cret") {
			t.Fatalf("last_error %q (open %v): want the client's wording with the password hidden", a.Error, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failed attempt reported")
	}
}
