package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// deliveryDetail is GET /v1/webhooks/{id}/deliveries/{delivery_id}.
type deliveryDetail struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Origin       string `json:"origin"`
	AttemptCount int    `json:"attempt_count"`
	Attempts     []struct {
		StartedAt           time.Time `json:"started_at"`
		StatusCode          *int      `json:"status_code"`
		Error               *string   `json:"error"`
		Trigger             string    `json:"trigger"`
		ResponseBody        *string   `json:"response_body"`
		ResponseContentType *string   `json:"response_content_type"`
	} `json:"attempts"`
	Event json.RawMessage `json:"event"`
}

// TestDeliveryAttemptHistory: a receiver answering 500 with a body, then
// 200: the delivery's detail lists both attempts with their status,
// response body and content type, what triggered each, and the event it
// carried; the list stays light; a replay is marked as such.
func TestDeliveryAttemptHistory(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.Schedule = []time.Duration{10 * time.Millisecond} })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("database is down ✗"))
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "order.created")
	dl := g.waitDelivery(t, h.ID, seq, "succeeded")

	resp, body := g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries/"+dl.ID, "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	d := decode[deliveryDetail](t, body)
	if d.Status != "succeeded" || d.Origin != "live" || d.AttemptCount != 2 || len(d.Attempts) != 2 {
		t.Fatalf("detail = %s", body)
	}
	first, second := d.Attempts[0], d.Attempts[1]
	if first.StatusCode == nil || *first.StatusCode != 500 || first.Trigger != "scheduled" || first.Error == nil ||
		first.ResponseBody == nil || *first.ResponseBody != "database is down ✗" ||
		first.ResponseContentType == nil || *first.ResponseContentType != "text/plain; charset=utf-8" {
		t.Errorf("first attempt = %+v", first)
	}
	if second.StatusCode == nil || *second.StatusCode != 200 || second.Trigger != "retry" || second.Error != nil || !second.StartedAt.After(first.StartedAt) {
		t.Errorf("second attempt = %+v", second)
	}
	var ev struct{ Seq uint64 }
	if err := json.Unmarshal(d.Event, &ev); err != nil || ev.Seq != seq {
		t.Errorf("event = %s", d.Event)
	}
	_, list := g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries", "", nil)
	var raw struct{ Deliveries []map[string]any }
	_ = json.Unmarshal(list, &raw)
	if len(raw.Deliveries) != 1 || raw.Deliveries[0]["attempts"] != float64(2) || raw.Deliveries[0]["event"] != nil {
		t.Errorf("the list is not light: %s", list)
	}

	// A replay makes a delivery marked replay, its first attempt too.
	resp, body = g.postJSON(t, "/v1/webhooks/"+h.ID+"/replay", map[string]any{"after": 0})
	wantStatus(t, resp, body, http.StatusAccepted)
	var replayed deliveryJSON
	eventually(t, 5*time.Second, "the replayed delivery", func() bool {
		for _, x := range g.deliveries(t, h.ID, "") {
			if x.ID != dl.ID && x.Status == "succeeded" {
				replayed = x
				return true
			}
		}
		return false
	})
	_, body = g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries/"+replayed.ID, "", nil)
	if d := decode[deliveryDetail](t, body); d.Origin != "replay" || len(d.Attempts) != 1 || d.Attempts[0].Trigger != "replay" {
		t.Errorf("replayed detail = %s", body)
	}
	resp, body = g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries/dlv_nope", "", nil)
	wantProblem(t, resp, body, http.StatusNotFound, "not-found")
}

// TestDeliveryListPagesBack: ?before=<id> continues after that delivery,
// with the status filter.
func TestDeliveryListPagesBack(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL})
	var seqs []uint64
	for range 5 {
		seqs = append(seqs, g.publish(t, "order.created"))
	}
	g.waitDelivery(t, h.ID, seqs[4], "succeeded")
	eventually(t, 5*time.Second, "five succeeded", func() bool { return len(g.deliveries(t, h.ID, "?status=succeeded")) == 5 })
	page1 := g.deliveries(t, h.ID, "?status=succeeded&limit=2")
	page2 := g.deliveries(t, h.ID, fmt.Sprintf("?status=succeeded&limit=2&before=%s", page1[1].ID))
	page3 := g.deliveries(t, h.ID, fmt.Sprintf("?status=succeeded&limit=2&before=%s", page2[1].ID))
	got := []uint64{}
	for _, p := range [][]deliveryJSON{page1, page2, page3} {
		for _, x := range p {
			got = append(got, x.EventSeq)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{seqs[4], seqs[3], seqs[2], seqs[1], seqs[0]}) {
		t.Errorf("pages = %v, want the five newest first", got)
	}
}

// TestManualRetryClearsTheRetryingCount: a manual retry that delivers a
// retrying delivery takes it out of stats.retrying at once, not when its
// scheduled retry would have fallen due.
func TestManualRetryClearsTheRetryingCount(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.Schedule = []time.Duration{time.Hour} })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL})
	dl := g.waitDelivery(t, h.ID, g.publish(t, "order.created"), "retrying")
	if n := g.getHook(t, h.ID).Stats.Retrying; n != 1 {
		t.Fatalf("retrying = %d before the manual retry, want 1", n)
	}
	resp, body := g.postJSON(t, "/v1/webhooks/"+h.ID+"/deliveries/"+dl.ID+"/retry", map[string]any{})
	wantStatus(t, resp, body, http.StatusAccepted)
	g.waitDelivery(t, h.ID, dl.EventSeq, "succeeded")
	if n := g.getHook(t, h.ID).Stats.Retrying; n != 0 {
		t.Errorf("retrying = %d after the manual retry delivered it, want 0", n)
	}
}
