package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

func TestInflightLimit(t *testing.T) {
	// The first request holds the only slot while its append is held.
	inAppend, release := make(chan struct{}), make(chan struct{})
	g := startGateway(t, func(o *options) {
		o.API.MaxInflight = 1
		o.WrapLog = func(l store.Log) store.Log {
			return &appendHook{Log: l, append: func(ctx context.Context, b []store.Event, out []store.Appended) ([]store.Appended, error) {
				close(inAppend)
				<-release
				return l.Append(ctx, b, out)
			}}
		}
	})
	first := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/events", strings.NewReader(`{"type":"a.b","data":1}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := g.Client.Do(req)
		if err != nil {
			t.Error(err)
			first <- nil
			return
		}
		resp.Body.Close()
		first <- resp
	}()
	<-inAppend
	resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	close(release)
	if r := <-first; r == nil || r.StatusCode != http.StatusAccepted {
		t.Fatalf("the request holding the slot did not succeed: %+v", r)
	}
	resp, body = g.do(t, http.MethodGet, "/v1/events", "", nil) // the slot is free again
	wantStatus(t, resp, body, http.StatusOK)
	if g.Ring.Bounds().Newest != 1 {
		t.Fatal("the accepted event was not stored")
	}
}

func TestIngestRateLimit(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.IngestRate = 2; o.API.MaxBatch = 2; o.API.Keys = []string{"a", "b"} })
	post := func(key string) (*http.Response, []byte) {
		return g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"a.b","data":1}`), "Authorization", "Bearer "+key)
	}
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`[{"type":"a.b","data":1},{"type":"a.b","data":2}]`), "Authorization", "Bearer a")
	wantStatus(t, resp, body, http.StatusAccepted) // a batch counts as its events
	resp, body = post("a")
	wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "2" || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers = %v", resp.Header)
	}
	resp, body = post("b") // another key has its own budget
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = g.do(t, http.MethodGet, "/v1/events", "", nil, "Authorization", "Bearer a") // reads are not limited
	wantStatus(t, resp, body, http.StatusOK)
	if n := g.Ring.Bounds().Newest; n != 3 {
		t.Fatalf("stored %d events, want 3 (2 + 1)", n)
	}
}
