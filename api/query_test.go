package api_test

import (
	"net/http"
	"testing"
)

// TestQueryParametersBothSpellingsAndNoStrangers: replay and the stream
// take the type filter as `type` or `types`, and refuse a parameter they
// do not know (400, naming it) instead of ignoring a misspelt filter.
func TestQueryParametersBothSpellingsAndNoStrangers(t *testing.T) {
	g := startGateway(t)
	g.publish(t, "order.created")
	g.publish(t, "billing.paid")
	for _, q := range []string{"type=order.*", "types=order.*", "types=order.*,shipping.>"} {
		resp, body := g.do(t, http.MethodGet, "/v1/events?"+q, "", nil)
		wantStatus(t, resp, body, http.StatusOK)
		page := decode[struct {
			Events []struct{ Type string } `json:"events"`
		}](t, body)
		if len(page.Events) != 1 || page.Events[0].Type != "order.created" {
			t.Errorf("GET /v1/events?%s = %s, want only order.created", q, body)
		}
	}
	resp, body := g.do(t, http.MethodGet, "/v1/events?typs=order.*", "", nil)
	if p := wantProblem(t, resp, body, http.StatusBadRequest, "bad-request"); len(p.fields()) != 1 || p.fields()[0] != "typs" {
		t.Errorf("fields = %v", p.fields())
	}

	// The stream: `type=` filters as `types=` does; a stranger is refused.
	s := g.dialStream(t, "/v1/stream?type=billing.*&after=0", nil)
	s.hello()
	if ev := s.events(1)[0]; ev.Seq != 2 {
		t.Errorf("stream with type=billing.* sent %s first, want seq 2", ev)
	}
	resp, body = g.do(t, http.MethodGet, "/v1/stream?typ=billing.*", "", nil, "Accept", "text/event-stream")
	if p := wantProblem(t, resp, body, http.StatusBadRequest, "bad-request"); len(p.fields()) != 1 || p.fields()[0] != "typ" {
		t.Errorf("fields = %v", p.fields())
	}
}
