package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

// patternsQuery returns n distinct type patterns as repeated name=
// parameters.
func patternsQuery(name string, n int) string {
	q := make([]string, n)
	for i := range q {
		q[i] = fmt.Sprintf("%s=p%d.*", name, i)
	}
	return strings.Join(q, "&")
}

// A replay or stream filter with more than store.MaxFilterPatterns
// patterns is a 422 naming the parameter; exactly that many is fine.
func TestFilterPatternsAreCapped(t *testing.T) {
	g := startGateway(t)
	resp, body := g.do(t, http.MethodGet, "/v1/events?"+patternsQuery("type", store.MaxFilterPatterns), "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = g.do(t, http.MethodGet, "/v1/events?"+patternsQuery("type", store.MaxFilterPatterns+1), "", nil)
	if p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error"); len(p.Errors) != 1 || p.Errors[0].Field != "type" {
		t.Fatalf("errors %+v, want one naming type", p.Errors)
	}
	// types= counts comma-separated patterns too.
	list := strings.TrimPrefix(strings.ReplaceAll(patternsQuery("types", store.MaxFilterPatterns+1), "&types=", ","), "types=")
	resp, body = g.do(t, http.MethodGet, "/v1/stream?types="+list, "", nil, "Accept", "text/event-stream")
	if p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error"); len(p.Errors) != 1 || p.Errors[0].Field != "types" {
		t.Fatalf("errors %+v, want one naming types", p.Errors)
	}
}

// /metrics shows the bytes the ring holds and its byte budget.
func TestMetricsShowBufferBytes(t *testing.T) {
	g := startGateway(t)
	if g.NATS {
		t.Skip("the ring's gauges")
	}
	g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	resp, body := g.do(t, http.MethodGet, "/metrics", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	held := g.Ring.(*store.Ring).HeldBytes()
	for name, want := range map[string]float64{
		"eventgate_buffer_capacity_bytes": store.DefaultMaxBytes,
		"eventgate_buffer_bytes":          float64(held),
	} {
		var got float64
		_, after, _ := bytes.Cut(body, []byte("\n"+name+" "))
		if _, err := fmt.Sscan(string(after), &got); err != nil || got != want || held == 0 {
			t.Errorf("%s = %v (%v), want %v", name, got, err, want)
		}
	}
}

// An event larger than the whole byte budget is a 413 and nothing is
// dropped to make room.
func TestEventOverBufferBytesIs413(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.WrapLog = func(store.Log) store.Log {
			return store.NewRingConfig(store.RingConfig{Capacity: 100, MaxBytes: 4 << 10})
		}
	})
	if g.NATS {
		t.Skip("the ring's budget")
	}
	g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"a.b","data":"`+strings.Repeat("x", 5<<10)+`"}`))
	wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "body-too-large")
	if b := g.Pub.Log().Bounds(); b.Oldest != 1 || b.Newest != 1 {
		t.Fatalf("bounds %+v after the refusal, want the first event kept", b)
	}
}
