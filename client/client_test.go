package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/client"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPublish(t *testing.T) {
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	ctx := testCtx(t)

	res, err := c.Publish(ctx, client.Event{Type: "order.created", Source: "/shop", Data: map[string]any{"order": 981}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 1 || !uuidV7.MatchString(res.ID) || res.Duplicate {
		t.Fatalf("Publish = %+v, want seq 1, a generated UUIDv7 id, not a duplicate", res)
	}

	// A repeat of source+id is not stored again.
	again, err := c.Publish(ctx, client.Event{ID: res.ID, Type: "order.created", Source: "/shop", Data: 1})
	if err != nil {
		t.Fatal(err)
	}
	if again != (client.Published{Seq: 1, ID: res.ID, Duplicate: true}) {
		t.Fatalf("repeat = %+v, want seq 1, duplicate", again)
	}

	batch, err := c.PublishBatch(ctx, []client.Event{
		{Type: "order.paid", Data: json.RawMessage(`{"order":981}`)},
		{ID: res.ID, Source: "/shop", Type: "order.created", Data: nil},
		{Type: "user.created", Subject: "u1", Data: "u1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 3 || batch[0].Seq != 2 || batch[1] != again || batch[2].Seq != 3 || batch[0].ID == batch[2].ID {
		t.Fatalf("PublishBatch = %+v", batch)
	}

	ev, err := c.GetEvent(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var data struct{ Order int }
	if err := ev.UnmarshalData(&data); err != nil || ev.Type != "order.paid" || ev.ID != batch[0].ID || data.Order != 981 || ev.Source != "/" {
		t.Fatalf("GetEvent(2) = %+v (data %+v, err %v)", ev, data, err)
	}
	if _, err := c.GetEvent(ctx, 99); apiError(t, err).StatusCode != http.StatusNotFound {
		t.Fatalf("GetEvent(99): %v, want 404", err)
	}

	// Invalid input: a typed problem naming each field, nothing stored.
	_, err = c.PublishBatch(ctx, []client.Event{{Type: "ok.one", Data: 1}, {Type: "bad type", Data: 2}})
	e := apiError(t, err)
	if e.StatusCode != 422 || e.Type != "https://eventgate.dev/problems/validation-error" || len(e.Errors) != 1 || e.Errors[0].Field != "/1/type" {
		t.Fatalf("invalid batch: %+v", e)
	}
	if _, err := c.Publish(ctx, client.Event{Type: "x", Seq: 5, Data: 1}); err == nil {
		t.Fatal("Publish with Seq set: no error")
	}
}

// retryFront answers with the statuses in script, one per request, then
// forwards requests to the gateway. It records the bodies it saw.
type retryFront struct {
	gateway string
	script  []func(w http.ResponseWriter, r *http.Request, body []byte) // nil: forward
	n       atomic.Int32
	bodies  [][]byte // written by the server's handler goroutines, read after the calls return
}

func (f *retryFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	i := int(f.n.Add(1)) - 1
	f.bodies = append(f.bodies, body)
	if i < len(f.script) && f.script[i] != nil {
		f.script[i](w, r, body)
		return
	}
	resp, err := http.Post(f.gateway+r.URL.Path, r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func refuse(status int, retryAfter string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Retry-After", retryAfter)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"type":"https://eventgate.dev/problems/unavailable","title":"Service unavailable","status":503,"detail":"busy"}`)
	}
}

func TestPublishRetries(t *testing.T) {
	g := startGateway(t, gwConfig{})

	t.Run("RetryAfter", func(t *testing.T) {
		f := &retryFront{gateway: g.URL, script: []func(http.ResponseWriter, *http.Request, []byte){
			refuse(503, "1"),
			refuse(429, time.Now().Add(time.Second).UTC().Format(http.TimeFormat)),
		}}
		ts := httptest.NewServer(f)
		defer ts.Close()
		c := newClient(t, ts.URL)
		start := time.Now()
		res, err := c.Publish(testCtx(t), client.Event{Type: "order.created", Data: 1})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 900*time.Millisecond {
			t.Errorf("three attempts took %v: Retry-After (1s, then an HTTP date) not honoured", took)
		}
		if f.n.Load() != 3 || !bytes.Equal(f.bodies[0], f.bodies[2]) || res.Duplicate {
			t.Fatalf("attempts %d, bodies %q, result %+v: want 3 attempts with the same body", f.n.Load(), f.bodies, res)
		}
	})

	t.Run("LostAnswer", func(t *testing.T) {
		// The first attempt is stored, but its answer never arrives: the
		// retry carries the same id and is answered as a duplicate.
		f := &retryFront{gateway: g.URL}
		f.script = []func(http.ResponseWriter, *http.Request, []byte){func(w http.ResponseWriter, r *http.Request, body []byte) {
			resp, err := http.Post(g.URL+"/v1/events", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}}
		ts := httptest.NewServer(f)
		defer ts.Close()
		c := newClient(t, ts.URL)
		res, err := c.Publish(testCtx(t), client.Event{Type: "order.created", Data: 2})
		if err != nil {
			t.Fatal(err)
		}
		if f.n.Load() != 2 || !res.Duplicate {
			t.Fatalf("attempts %d, result %+v: want 2 attempts, the second a duplicate", f.n.Load(), res)
		}
	})

	t.Run("BudgetTooShort", func(t *testing.T) {
		f := &retryFront{gateway: g.URL, script: []func(http.ResponseWriter, *http.Request, []byte){refuse(503, "120")}}
		ts := httptest.NewServer(f)
		defer ts.Close()
		c := newClient(t, ts.URL, client.WithRetry(client.RetryPolicy{MaxElapsed: 5 * time.Second}))
		_, err := c.Publish(testCtx(t), client.Event{Type: "order.created", Data: 3})
		e := apiError(t, err)
		if e.StatusCode != 503 || e.RetryAfter != 120*time.Second || e.Detail != "busy" || f.n.Load() != 1 {
			t.Fatalf("err %+v after %d attempts: want the 503 at once", e, f.n.Load())
		}
	})

	t.Run("NotRetried", func(t *testing.T) {
		f := &retryFront{gateway: g.URL}
		ts := httptest.NewServer(f)
		defer ts.Close()
		c := newClient(t, ts.URL)
		_, err := c.Publish(testCtx(t), client.Event{Type: "bad type", Data: 4})
		if e := apiError(t, err); e.StatusCode != 422 || f.n.Load() != 1 {
			t.Fatalf("err %+v after %d attempts: want one 422", e, f.n.Load())
		}
	})

	t.Run("IngestRate", func(t *testing.T) {
		// The real gateway's --ingest-rate: the client waits out its 429s.
		lim := startGateway(t, gwConfig{API: api.Config{IngestRate: 2}})
		c := newClient(t, lim.URL, client.WithRetry(client.RetryPolicy{MaxAttempts: 10, MaxElapsed: 20 * time.Second}))
		for i := range 4 {
			res, err := c.Publish(testCtx(t), client.Event{Type: "order.created", Data: i})
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if res.Seq != uint64(i+1) {
				t.Fatalf("publish %d: seq %d", i, res.Seq)
			}
		}
	})
}

func TestAPIKey(t *testing.T) {
	g := startGateway(t, gwConfig{API: api.Config{Keys: []string{"k1"}}})
	ctx := testCtx(t)
	if _, err := newClient(t, g.URL, client.WithAPIKey("k1")).Publish(ctx, client.Event{Type: "a.b", Data: 1}); err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, g.URL, client.WithAPIKey("nope"))
	if _, err := bad.Publish(ctx, client.Event{Type: "a.b", Data: 1}); apiError(t, err).StatusCode != 401 {
		t.Fatalf("bad key: %v", err)
	}
	for _, err := range bad.Subscribe(ctx, client.SubscribeOptions{}) {
		if apiError(t, err).StatusCode != 401 {
			t.Fatalf("subscribe with a bad key: %v", err)
		}
	}
}

func TestReplay(t *testing.T) {
	g := startGateway(t, gwConfig{Capacity: 10})
	c := newClient(t, g.URL)
	ctx := testCtx(t)
	for i := range 25 {
		typ := "order.created"
		if i%2 == 1 {
			typ = "user.created"
		}
		if _, err := c.Publish(ctx, client.Event{Type: typ, Data: i}); err != nil {
			t.Fatal(err)
		}
	}

	// From the start: the gap (seqs 1-15 were overwritten), then 16..25
	// in pages of 3.
	var seqs []uint64
	var gaps []client.GapError
	for ev, err := range c.Replay(ctx, client.ReplayOptions{Limit: 3}) {
		var gap *client.GapError
		switch {
		case errors.As(err, &gap):
			gaps = append(gaps, *gap)
		case err != nil:
			t.Fatal(err)
		default:
			seqs = append(seqs, ev.Seq)
		}
	}
	if len(gaps) != 1 || gaps[0] != (client.GapError{From: 1, To: 15}) {
		t.Fatalf("gaps %+v, want one 1..15", gaps)
	}
	if want := seqRange(16, 25); !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}

	// Filtered, from inside the buffer, stopping early.
	seqs = nil
	for ev, err := range c.Replay(ctx, client.ReplayOptions{After: 16, Types: []string{"order.*"}, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
		if len(seqs) == 3 {
			break
		}
	}
	if want := []uint64{17, 19, 21}; !slices.Equal(seqs, want) {
		t.Fatalf("filtered seqs %v, want %v", seqs, want)
	}

	// A position from another lifetime of the log.
	for _, err := range c.Replay(ctx, client.ReplayOptions{After: 20, Epoch: "another"}) {
		var ee *client.EpochError
		if !errors.As(err, &ee) || ee.Got != g.Epoch {
			t.Fatalf("replay in another epoch: %v", err)
		}
	}
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
