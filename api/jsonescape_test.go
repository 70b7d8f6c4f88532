package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestJSONAnswersDoNotEscapeHTML: "order.>" is written as such in every
// JSON answer, not as "order.\u003e" (webhooks, problems, stored events).
func TestJSONAnswersDoNotEscapeHTML(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, nil)
	resp, body := g.postJSON(t, "/v1/webhooks", map[string]any{"url": rc.URL, "types": []string{"order.>"}})
	wantStatus(t, resp, body, http.StatusCreated)
	hook := body
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/cloudevents+json",
		[]byte(`{"specversion":"1.0","id":"x1","source":"/s","type":"order.created","subject":"été <b> & >","note":"a < b & c > d","data":{"html":"<p>"}}`))
	wantStatus(t, resp, body, http.StatusAccepted)
	_, replay := g.do(t, http.MethodGet, "/v1/events?type=order.>", "", nil)
	_, problem := g.do(t, http.MethodGet, "/v1/events?type=a.>.b", "", nil)
	for name, b := range map[string][]byte{"webhook": hook, "replay": replay, "problem": problem} {
		if strings.Contains(string(b), `\u003`) || strings.Contains(string(b), `\u0026`) {
			t.Errorf("%s answer escapes HTML characters: %s", name, b)
		}
	}
	if !strings.Contains(string(replay), `"subject":"été <b> & >"`) || !strings.Contains(string(replay), `"note":"a < b & c > d"`) {
		t.Errorf("replay = %s", replay)
	}
}
