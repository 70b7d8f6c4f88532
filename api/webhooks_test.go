package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// hookJSON is a webhook as the API answers it.
type hookJSON struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Types          []string `json:"types"`
	Enabled        bool     `json:"enabled"`
	Status         string   `json:"status"`
	DisabledReason string   `json:"disabled_reason"`
	Secret         string   `json:"secret"`
	Stats          struct {
		InFlight         int     `json:"in_flight"`
		Retrying         int     `json:"retrying"`
		Succeeded        int     `json:"succeeded"`
		Failed           int     `json:"failed"`
		ArrivalRate      float64 `json:"arrival_rate"`
		MeanTimeInSystem float64 `json:"mean_time_in_system_ms"`
		InSystem         int     `json:"in_system"`
		Waiting          int     `json:"waiting"`
	} `json:"stats"`
}

// deliveryJSON is a delivery as the API answers it.
type deliveryJSON struct {
	ID             string  `json:"id"`
	EventSeq       uint64  `json:"event_seq"`
	EventID        *string `json:"event_id"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
	NextAttemptAt  *string `json:"next_attempt_at"`
}

// testSecret is a valid Standard Webhooks secret (the spec's test vector).
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// fastRetries makes retries quick enough for end-to-end tests and jitter
// predictable (factor 1).
func fastRetries(schedule ...time.Duration) func(*options) {
	return func(o *options) {
		o.Disp.Schedule = schedule
		o.Disp.Rand = func() float64 { return 0.5 }
	}
}

func (g *testGateway) createHook(t testing.TB, body map[string]any) hookJSON {
	t.Helper()
	resp, b := g.postJSON(t, "/v1/webhooks", body)
	wantStatus(t, resp, b, http.StatusCreated)
	h := decode[hookJSON](t, b)
	if loc := resp.Header.Get("Location"); loc != "/v1/webhooks/"+h.ID {
		t.Fatalf("Location = %q, want /v1/webhooks/%s", loc, h.ID)
	}
	return h
}

func (g *testGateway) getHook(t testing.TB, id string) hookJSON {
	t.Helper()
	resp, b := g.do(t, http.MethodGet, "/v1/webhooks/"+id, "", nil)
	wantStatus(t, resp, b, http.StatusOK)
	return decode[hookJSON](t, b)
}

func (g *testGateway) deliveries(t testing.TB, id, query string) []deliveryJSON {
	t.Helper()
	resp, b := g.do(t, http.MethodGet, "/v1/webhooks/"+id+"/deliveries"+query, "", nil)
	wantStatus(t, resp, b, http.StatusOK)
	return decode[struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}](t, b).Deliveries
}

// waitDelivery polls the delivery log until the delivery of seq has the
// status, and returns it.
func (g *testGateway) waitDelivery(t testing.TB, id string, seq uint64, status string) deliveryJSON {
	t.Helper()
	var last deliveryJSON
	defer func() { // eventually's Fatalf ends the test here: say where the delivery stood
		if t.Failed() {
			t.Logf("delivery of seq %d last seen as %+v", seq, last)
		}
	}()
	eventually(t, 10*time.Second, fmt.Sprintf("delivery of seq %d to be %s", seq, status), func() bool {
		for _, d := range g.deliveries(t, id, "?limit=1000") {
			if d.EventSeq == seq {
				last = d
				return d.Status == status
			}
		}
		return false
	})
	return last
}

func (g *testGateway) publish(t testing.TB, typ string) uint64 {
	t.Helper()
	resp, b := g.postJSON(t, "/v1/events", map[string]any{"type": typ, "data": map[string]any{"n": 1}})
	wantStatus(t, resp, b, http.StatusAccepted)
	return decode[struct {
		Seq uint64 `json:"seq"`
	}](t, b).Seq
}

func TestWebhookDeliversExactBodySigned(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL, "secret": testSecret, "description": "test"})
	if h.Secret != testSecret || !h.Enabled || h.Status != "active" || !slices.Equal(h.Types, []string{">"}) {
		t.Fatalf("created = %+v", h)
	}
	seq := g.publish(t, "order.created")
	got := rc.next(t, 5*time.Second)

	rec, err := g.Ring.Get(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(rec.JSON) {
		t.Fatalf("body = %s, want the stored JSON %s", got.Body, rec.JSON)
	}
	if ct, ua := got.Header.Get("Content-Type"), got.Header.Get("User-Agent"); ct != "application/json" || ua != "eventgate" {
		t.Fatalf("Content-Type %q, User-Agent %q", ct, ua)
	}
	secret, _ := signature.ParseSecret(testSecret)
	if err := signature.Verify([]signature.Secret{secret}, got.Header, got.Body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("signature does not verify: %v (headers %v)", err, got.Header)
	}
	if id := got.Header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") || !strings.HasSuffix(id, "_"+strconv.FormatUint(seq, 10)) {
		t.Fatalf("webhook-id = %q", id)
	}
	d := g.waitDelivery(t, h.ID, seq, "succeeded")
	if d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 200 || d.LastError != nil || d.EventID == nil {
		t.Fatalf("delivery = %+v", d)
	}

	// The secret is shown only at creation.
	if got := g.getHook(t, h.ID); got.Secret != "" || got.Stats.Succeeded != 1 {
		t.Fatalf("GET = %+v, want no secret and 1 success", got)
	}
	resp, b := g.do(t, http.MethodGet, "/v1/webhooks", "", nil)
	wantStatus(t, resp, b, http.StatusOK)
	if strings.Contains(string(b), "whsec_") {
		t.Fatalf("list shows a secret: %s", b)
	}
}

func TestWebhookSameIDForEveryEndpoint(t *testing.T) {
	g := startGateway(t)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	g.createHook(t, map[string]any{"url": a.URL})
	g.createHook(t, map[string]any{"url": b.URL})
	g.publish(t, "x.y")
	ra, rb := a.next(t, 5*time.Second), b.next(t, 5*time.Second)
	if ra.Header.Get("webhook-id") != rb.Header.Get("webhook-id") {
		t.Fatalf("webhook-id %q vs %q", ra.Header.Get("webhook-id"), rb.Header.Get("webhook-id"))
	}
}

func TestWebhookPatternFiltering(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.Concurrency = 1 }) // in order
	rc := newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL, "types": []string{"order.*", "billing.>"}})
	for _, typ := range []string{"order.created", "user.created", "order.item.added", "billing.invoice.paid", "orders.created", "order.done"} {
		g.publish(t, typ)
	}
	var types []string
	for range 3 {
		r := rc.next(t, 5*time.Second)
		ev := decode[struct {
			Type string `json:"type"`
		}](t, r.Body)
		types = append(types, ev.Type)
	}
	if want := []string{"order.created", "billing.invoice.paid", "order.done"}; !slices.Equal(types, want) {
		t.Fatalf("delivered %v, want %v", types, want)
	}
	if n := len(g.deliveries(t, h.ID, "")); n != 3 {
		t.Fatalf("%d deliveries logged, want 3", n)
	}
}

func TestWebhookSucceedsAfterFailures(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond, 20*time.Millisecond, 30*time.Millisecond, 40*time.Millisecond))
	rc := newReceiver(t, failFirst(3, http.StatusInternalServerError))
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "order.created")
	var ids []string
	for range 4 {
		r := rc.next(t, 5*time.Second)
		ids = append(ids, r.Header.Get("webhook-id"))
	}
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] || ids[3] != ids[0] {
		t.Fatalf("webhook-id changed across retries: %v", ids)
	}
	d := g.waitDelivery(t, h.ID, seq, "succeeded")
	if d.Attempts != 4 || *d.LastStatusCode != http.StatusNoContent || d.LastError != nil || d.NextAttemptAt != nil {
		t.Fatalf("delivery = %+v", d)
	}
}

// TestWebhookRetryAfterAndFreshSignatures: a 503 with Retry-After: 1 puts
// the next attempt at least a second later (the schedule says 10ms), and
// that attempt carries its own timestamp and a signature over it.
func TestWebhookRetryAfterAndFreshSignatures(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond, 5*time.Second))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL, "secret": testSecret})
	seq := g.publish(t, "order.created")
	first, second := rc.next(t, 5*time.Second), rc.next(t, 5*time.Second)
	if gap := second.At.Sub(first.At); gap < time.Second {
		t.Fatalf("second attempt %s after the first; Retry-After asked for 1s", gap)
	}
	ts1, ts2 := first.Header.Get("webhook-timestamp"), second.Header.Get("webhook-timestamp")
	if ts1 == ts2 {
		t.Fatalf("both attempts carry webhook-timestamp %s", ts1)
	}
	if first.Header.Get("webhook-signature") == second.Header.Get("webhook-signature") {
		t.Fatal("both attempts carry the same signature")
	}
	secret, _ := signature.ParseSecret(testSecret)
	for _, r := range []received{first, second} {
		if err := signature.Verify([]signature.Secret{secret}, r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("attempt %d: %v", r.N, err)
		}
	}
	g.waitDelivery(t, h.ID, seq, "succeeded")
}

func TestWebhookGoneDisables(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, status(http.StatusGone))
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "order.created")
	rc.next(t, 5*time.Second)
	d := g.waitDelivery(t, h.ID, seq, "failed")
	if d.Attempts != 1 || *d.LastStatusCode != http.StatusGone {
		t.Fatalf("delivery = %+v", d)
	}
	got := g.getHook(t, h.ID)
	if got.Enabled || got.Status != "disabled" || !strings.Contains(got.DisabledReason, "410") {
		t.Fatalf("webhook = %+v, want disabled with a 410 reason", got)
	}
	// Nothing more goes out; a healthy webhook proves the next event was
	// dispatched.
	other := newReceiver(t, nil)
	g.createHook(t, map[string]any{"url": other.URL})
	g.publish(t, "order.created")
	other.next(t, 5*time.Second)
	if n := rc.count(); n != 1 {
		t.Fatalf("disabled webhook got %d requests, want 1", n)
	}
}

func TestWebhookRedirectIsFailureNotFollowed(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond))
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hook" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "order.created")
	d := g.waitDelivery(t, h.ID, seq, "failed")
	if d.Attempts != 2 || *d.LastStatusCode != http.StatusFound || !strings.Contains(*d.LastError, "302") {
		t.Fatalf("delivery = %+v", d)
	}
	close(rc.got)
	for r := range rc.got {
		if r.Path != "/hook" {
			t.Fatalf("redirect followed to %s", r.Path)
		}
	}
	rc.got = make(chan received, 1)
}

func TestWebhookFailedAfterMaxAttemptsThenManualRetry(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond, 20*time.Millisecond))
	rc := newReceiver(t, failFirst(3, http.StatusInternalServerError))
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "order.created")
	d := g.waitDelivery(t, h.ID, seq, "failed")
	if d.Attempts != 3 || *d.LastStatusCode != 500 || !strings.Contains(*d.LastError, "HTTP 500: attempt 3 refused") || d.NextAttemptAt != nil {
		t.Fatalf("delivery = %+v", d)
	}
	if got := g.getHook(t, h.ID); got.Stats.Failed != 1 || got.Stats.InSystem != 0 {
		t.Fatalf("stats = %+v", got.Stats)
	}
	if fl := g.deliveries(t, h.ID, "?status=failed"); len(fl) != 1 {
		t.Fatalf("status=failed lists %d", len(fl))
	}
	if ok := g.deliveries(t, h.ID, "?status=succeeded"); len(ok) != 0 {
		t.Fatalf("status=succeeded lists %d", len(ok))
	}

	resp, b := g.do(t, http.MethodPost, "/v1/webhooks/"+h.ID+"/deliveries/"+d.ID+"/retry", "", nil)
	wantStatus(t, resp, b, http.StatusAccepted)
	d = g.waitDelivery(t, h.ID, seq, "succeeded")
	if d.Attempts != 4 {
		t.Fatalf("after manual retry: %+v", d)
	}
	resp, b = g.do(t, http.MethodPost, "/v1/webhooks/"+h.ID+"/deliveries/dlv_nope/retry", "", nil)
	wantProblem(t, resp, b, http.StatusNotFound, "not-found")
}

func TestWebhookPatchDisableHoldsAndReenableDelivers(t *testing.T) {
	g := startGateway(t)
	rc, marker := newReceiver(t, nil), newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL})
	g.createHook(t, map[string]any{"url": marker.URL})

	resp, b := g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"enabled":false}`))
	wantStatus(t, resp, b, http.StatusOK)
	if got := decode[hookJSON](t, b); got.Enabled || got.Status != "disabled" || got.DisabledReason != "disabled by request" {
		t.Fatalf("PATCH answered %+v", got)
	}
	seq := g.publish(t, "order.created")
	marker.next(t, 5*time.Second) // the event was dispatched to the enabled one
	if n := rc.count(); n != 0 {
		t.Fatalf("disabled webhook got %d requests", n)
	}

	resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"enabled":true}`))
	wantStatus(t, resp, b, http.StatusOK)
	got := rc.next(t, 5*time.Second) // held, not dropped: resumes from its cursor
	if !strings.Contains(string(got.Body), fmt.Sprintf(`"seq":%d`, seq)) {
		t.Fatalf("after re-enable got %s", got.Body)
	}

	resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"resume":"newest"}`))
	wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
	resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"secret":"`+testSecret+`"}`))
	if p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error"); !slices.Equal(p.fields(), []string{"/secret"}) {
		t.Fatalf("fields = %v", p.fields())
	}
	resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"types":["billing.>"],"description":"d"}`))
	wantStatus(t, resp, b, http.StatusOK)
	if got := decode[hookJSON](t, b); !slices.Equal(got.Types, []string{"billing.>"}) {
		t.Fatalf("types = %v", got.Types)
	}
}

func TestWebhookDeleteStopsDeliveries(t *testing.T) {
	g := startGateway(t)
	rc, marker := newReceiver(t, nil), newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL})
	g.createHook(t, map[string]any{"url": marker.URL})
	g.publish(t, "a.b")
	rc.next(t, 5*time.Second)
	marker.next(t, 5*time.Second)

	resp, b := g.do(t, http.MethodDelete, "/v1/webhooks/"+h.ID, "", nil)
	wantStatus(t, resp, b, http.StatusNoContent)
	g.publish(t, "a.b")
	marker.next(t, 5*time.Second)
	if n := rc.count(); n != 1 {
		t.Fatalf("deleted webhook got %d requests, want 1", n)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		resp, b = g.do(t, m, "/v1/webhooks/"+h.ID, "", nil)
		wantProblem(t, resp, b, http.StatusNotFound, "not-found")
	}
	resp, b = g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries", "", nil)
	wantProblem(t, resp, b, http.StatusNotFound, "not-found")
}

func TestWebhookValidation(t *testing.T) {
	g := startGateway(t)
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{}`, "/url"},
		{`{"url":"ftp://example.com/x"}`, "/url"},
		{`{"url":"/relative"}`, "/url"},
		{`{"url":"http://example.com","types":[]}`, "/types"},
		{`{"url":"http://example.com","types":["order..x"]}`, "/types/0"},
		{`{"url":"http://example.com","secret":"whsec_short"}`, "/secret"},
		{`{"url":"http://example.com","secret":"abc"}`, "/secret"},
		{`{"url":"http://example.com","colour":"red"}`, "/colour"},
		{`{"url":"http://example.com","enabled":"yes"}`, "/enabled"},
	} {
		resp, b := g.postJSON(t, "/v1/webhooks", tc.body)
		p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
		if !slices.Contains(p.fields(), tc.field) {
			t.Errorf("%s: fields %v, want %s", tc.body, p.fields(), tc.field)
		}
	}
	resp, b := g.postJSON(t, "/v1/webhooks", `{"url":`)
	wantProblem(t, resp, b, http.StatusBadRequest, "malformed-json")
	resp, b = g.do(t, http.MethodPost, "/v1/webhooks", "text/plain", []byte(`{}`))
	wantProblem(t, resp, b, http.StatusUnsupportedMediaType, "unsupported-media-type")
	for _, path := range []string{"/v1/webhooks/wh_nope", "/v1/webhooks/wh_nope/deliveries"} {
		resp, b = g.do(t, http.MethodGet, path, "", nil)
		wantProblem(t, resp, b, http.StatusNotFound, "not-found")
	}
	rc := newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL, "enabled": false})
	if h.Status != "disabled" || len(h.Secret) < 38 {
		t.Fatalf("created disabled = %+v", h)
	}
	if _, err := signature.ParseSecret(h.Secret); err != nil {
		t.Fatalf("generated secret %q: %v", h.Secret, err)
	}
	for _, q := range []string{"?status=done", "?limit=0", "?limit=1001", "?limit=x"} {
		resp, b = g.do(t, http.MethodGet, "/v1/webhooks/"+h.ID+"/deliveries"+q, "", nil)
		wantProblem(t, resp, b, http.StatusBadRequest, "bad-request")
	}
}

func TestWebhookSSRFRefusedAtRegistration(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.AllowPrivateTargets = false })
	for _, u := range []string{
		"http://127.0.0.1:9/x", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.1/",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fd00::1]/", "http://0.0.0.0/",
		"http://[::ffff:127.0.0.1]/", "http://localhost:8080/hook",
		// IPv4 carried in IPv6: IPv4-compatible, NAT64 (well-known and
		// local-use), 6to4, Teredo (client 127.0.0.1, client 10.0.0.1,
		// server 10.0.0.1).
		"http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b:1::a00:1]/", "http://[2002:7f00:1::]/",
		"http://[2001:0:5db8:d822::80ff:fffe]/", "http://[2001:0:5db8:d822::f5ff:fffe]/", "http://[2001:0:a00:1::a247:2ddd]/",
	} {
		resp, b := g.postJSON(t, "/v1/webhooks", map[string]any{"url": u})
		p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
		if !slices.Equal(p.fields(), []string{"/url"}) || !strings.Contains(p.Detail, "private targets") {
			t.Errorf("%s: %+v", u, p)
		}
	}
	// A public literal address is fine (nothing is sent: no event).
	g.createHook(t, map[string]any{"url": "http://93.184.216.34/hook"})
	h := g.createHook(t, map[string]any{"url": "http://93.184.216.34/hook2"})
	resp, b := g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"url":"http://127.0.0.1/"}`))
	wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
	resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"url":"http://[2002:7f00:1::]/"}`))
	wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
	// Ports outside 1-65535 are refused, on create and on PATCH.
	for _, u := range []string{"http://93.184.216.34:0/", "http://93.184.216.34:65536/", "http://93.184.216.34:99999/"} {
		resp, b := g.postJSON(t, "/v1/webhooks", map[string]any{"url": u})
		if p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error"); !slices.Equal(p.fields(), []string{"/url"}) {
			t.Errorf("%s: %+v", u, p)
		}
		resp, b = g.do(t, http.MethodPatch, "/v1/webhooks/"+h.ID, "application/json", []byte(`{"url":"`+u+`"}`))
		wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
	}
	resp, b = g.do(t, http.MethodDelete, "/v1/webhooks/"+h.ID, "", nil)
	wantStatus(t, resp, b, http.StatusNoContent)
}

// TestWebhookSSRFRefusedAtDial: the registration check is fooled (its
// resolver says "localhost" is a public address, as a rebinding DNS server
// would), but the dial-time guard sees 127.0.0.1 and refuses to connect.
func TestWebhookSSRFRefusedAtDial(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond), func(o *options) {
		o.Disp.AllowPrivateTargets = false
		o.Disp.Lookup = func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
	})
	rc := newReceiver(t, nil)
	u := strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)
	h := g.createHook(t, map[string]any{"url": u})
	seq := g.publish(t, "order.created")
	d := g.waitDelivery(t, h.ID, seq, "failed")
	if d.Attempts != 2 || d.LastStatusCode != nil || !strings.Contains(*d.LastError, "refused by the gateway") || !strings.Contains(*d.LastError, "loopback") {
		t.Fatalf("delivery = %+v", d)
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("receiver got %d requests through the guard", n)
	}
}

// TestWebhookIsolation: an endpoint that never answers holds its own
// attempt slots only; a fast endpoint gets every event promptly and ingest
// is not slowed.
func TestWebhookIsolation(t *testing.T) {
	g := startGateway(t, fastRetries(10*time.Millisecond), func(o *options) { o.Disp.Timeout = time.Minute })
	hang := newReceiver(t, nil)
	hang.answer = func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang.release:
		}
	}
	fast := newReceiver(t, nil)
	g.createHook(t, map[string]any{"url": hang.URL})
	g.createHook(t, map[string]any{"url": fast.URL})
	const n = 200
	start := time.Now()
	for range n {
		g.publish(t, "order.created")
	}
	ingest := time.Since(start)
	seen := map[string]bool{}
	for len(seen) < n {
		seen[fast.next(t, 5*time.Second).Header.Get("webhook-id")] = true
	}
	t.Logf("%d events: ingest %s, all delivered to the fast endpoint %s after the first post; the hanging one holds %d requests",
		n, ingest, time.Since(start), hang.count())
	if hang.count() > 8 {
		t.Fatalf("hanging endpoint got %d concurrent requests, want at most 8", hang.count())
	}
}

// TestWebhookOverwrittenBeforeTaken: the ring overwrites events while the
// endpoint is stuck; they become one failed delivery saying so.
func TestWebhookOverwrittenBeforeTaken(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 16; o.Disp.Concurrency = 1 })
	unblock := make(chan struct{})
	rc := newReceiver(t, nil)
	rc.answer = func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-unblock:
			case <-rc.release:
			}
		}
	}
	h := g.createHook(t, map[string]any{"url": rc.URL})
	first := g.publish(t, "a.b")
	rc.next(t, 5*time.Second) // in flight, holding the only slot
	for range 40 {
		g.publish(t, "a.b")
	}
	close(unblock)
	g.waitDelivery(t, h.ID, first, "succeeded")
	var gap deliveryJSON
	eventually(t, 10*time.Second, "the overwritten range to be logged", func() bool {
		for _, d := range g.deliveries(t, h.ID, "?status=failed") {
			if d.EventID == nil {
				gap = d
				return true
			}
		}
		return false
	})
	if gap.EventSeq != first+1 || gap.Attempts != 0 || !strings.Contains(*gap.LastError, "overwritten") {
		t.Fatalf("gap delivery = %+v", gap)
	}
	_, body := g.do(t, http.MethodGet, "/metrics", "", nil)
	if !strings.Contains(string(body), "eventgate_webhook_overwritten_events_total 24") {
		t.Fatalf("metrics lack the overwritten count:\n%s", grepLines(string(body), "eventgate_webhook_"))
	}
}

// TestWebhookShutdownDrains: events accepted before shutdown reach a
// healthy receiver before Dispatcher.Shutdown returns.
func TestWebhookShutdownDrains(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, nil)
	g.createHook(t, map[string]any{"url": rc.URL})
	const n = 300
	batch := make([]map[string]any, n)
	for i := range batch {
		batch[i] = map[string]any{"type": "order.created", "data": i}
	}
	resp, b := g.postJSON(t, "/v1/events", batch)
	wantStatus(t, resp, b, http.StatusAccepted)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Disp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := rc.count(); got != n {
		t.Fatalf("receiver got %d of %d events by the end of Shutdown", got, n)
	}
}

func TestWebhookMetricsAndStats(t *testing.T) {
	g := startGateway(t)
	rc := newReceiver(t, nil)
	h := g.createHook(t, map[string]any{"url": rc.URL})
	seq := g.publish(t, "a.b")
	g.waitDelivery(t, h.ID, seq, "succeeded")
	got := g.getHook(t, h.ID)
	if got.Stats.Succeeded != 1 || got.Stats.ArrivalRate <= 0 || got.Stats.MeanTimeInSystem <= 0 || got.Stats.InSystem != 0 {
		t.Fatalf("stats = %+v", got.Stats)
	}
	_, body := g.do(t, http.MethodGet, "/metrics", "", nil)
	for _, want := range []string{
		`eventgate_webhook_deliveries_total{result="succeeded"} 1`,
		`eventgate_webhook_attempts_total{outcome="success"} 1`,
		`eventgate_webhook_attempt_duration_seconds_count 1`,
		`eventgate_webhook_lag_events{webhook="` + h.ID + `"} 0`,
		`eventgate_webhook_in_system{webhook="` + h.ID + `"} 0`,
		`eventgate_webhook_arrival_rate{webhook="` + h.ID + `"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(string(body), "eventgate_webhook_"))
		}
	}
}

// Little's law over "stored → final outcome": events an endpoint has not
// taken yet are in the system, so a stuck endpoint shows its backlog.
func TestWebhookStatsCountTheBacklogInTheLog(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.Concurrency = 2 })
	hold := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL, "types": []string{"a.>"}})
	for range 10 {
		g.publish(t, "a.b")
	}
	g.publish(t, "other.type") // not matching: never counted
	for range 2 {
		<-rc.got // both slots busy
	}
	got := g.getHook(t, h.ID).Stats
	if got.InFlight != 2 || got.Waiting != 8 || got.InSystem != 10 || got.ArrivalRate != 10.0/60 {
		t.Fatalf("stats while stuck = %+v, want 2 in flight, 8 waiting, 10 in system, λ 10/60", got)
	}
	close(hold)
	for range 8 {
		<-rc.got
	}
	g.waitDelivery(t, h.ID, 10, "succeeded")
	deadline := time.Now().Add(10 * time.Second)
	for got = g.getHook(t, h.ID).Stats; got.Succeeded != 10 && time.Now().Before(deadline); got = g.getHook(t, h.ID).Stats {
		runtime.Gosched()
	}
	if got.Succeeded != 10 || got.InSystem != 0 || got.Waiting != 0 || got.MeanTimeInSystem <= 0 || got.ArrivalRate != 10.0/60 {
		t.Fatalf("stats after release = %+v", got)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestWebhookCapRefusesWith409(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Disp.MaxWebhooks = 2 })
	rc := newReceiver(t, nil)
	for range 2 {
		g.createHook(t, map[string]any{"url": rc.URL})
	}
	resp, body := g.postJSON(t, "/v1/webhooks", map[string]any{"url": rc.URL})
	wantProblem(t, resp, body, http.StatusConflict, "conflict")
}
