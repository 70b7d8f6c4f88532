package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/api"
)

type appended struct {
	Seq       uint64 `json:"seq"`
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

type storedEvent struct {
	Seq             uint64            `json:"seq"`
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Subject         string            `json:"subject"`
	Time            time.Time         `json:"time"`
	DataContentType string            `json:"datacontenttype"`
	Data            json.RawMessage   `json:"data"`
	DataBase64      string            `json:"data_base64"`
	Extensions      map[string]any    `json:"extensions"`
	Extra           map[string]string `json:"-"`
}

type replayPage struct {
	Events []storedEvent `json:"events"`
	Next   uint64        `json:"next"`
	Oldest uint64        `json:"oldest"`
	Newest uint64        `json:"newest"`
	Epoch  string        `json:"epoch"`
	Gap    *struct {
		From uint64 `json:"from"`
		To   uint64 `json:"to"`
	} `json:"gap"`
}

func TestPostSingleEvent(t *testing.T) {
	g := startGateway(t)
	before := time.Now().UTC().Add(-time.Second)
	resp, body := g.postJSON(t, "/v1/events", `{"type":"order.created","data":{"order":981},"subject":"order/981"}`)
	wantStatus(t, resp, body, http.StatusAccepted)
	a := decode[appended](t, body)
	if a.Seq != 1 || !strings.HasPrefix(a.ID, "evt_") || len(a.ID) != len("evt_")+26 {
		t.Fatalf("answer = %+v, want seq 1 and a generated evt_ ULID", a)
	}
	resp, body = g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	e := decode[storedEvent](t, body)
	if e.Seq != 1 || e.ID != a.ID || e.Type != "order.created" || e.Source != "/" || e.Subject != "order/981" || string(e.Data) != `{"order":981}` {
		t.Fatalf("stored = %+v", e)
	}
	if e.Time.Before(before) || e.Time.After(time.Now().Add(time.Second)) {
		t.Fatalf("time %v is not the time of receipt", e.Time)
	}
	// Generated ids sort in creation order.
	_, body = g.postJSON(t, "/v1/events", `{"type":"order.created","data":null}`)
	if b := decode[appended](t, body); b.ID <= a.ID || b.Seq != 2 {
		t.Fatalf("second id %q (seq %d) does not sort after %q", b.ID, b.Seq, a.ID)
	}
}

func TestPostKeepsGivenFields(t *testing.T) {
	g := startGateway(t)
	resp, body := g.postJSON(t, "/v1/events", `{"id":"my-1","type":"billing.invoice-paid","source":"/billing","time":"2026-11-26T10:00:00.5+01:00","data":[1,"two",{"3":true}]}`)
	wantStatus(t, resp, body, http.StatusAccepted)
	_, body = g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	e := decode[storedEvent](t, body)
	if e.ID != "my-1" || e.Source != "/billing" || !e.Time.Equal(time.Date(2026, 11, 26, 9, 0, 0, 5e8, time.UTC)) || string(e.Data) != `[1,"two",{"3":true}]` {
		t.Fatalf("stored = %+v", e)
	}
}

func TestPostBatch(t *testing.T) {
	g := startGateway(t)
	g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	var batch []map[string]any
	for i := range 5 {
		batch = append(batch, map[string]any{"type": "order.created", "id": fmt.Sprint("b", i), "data": i})
	}
	resp, body := g.postJSON(t, "/v1/events", batch)
	wantStatus(t, resp, body, http.StatusAccepted)
	out := decode[struct{ Events []appended }](t, body)
	if len(out.Events) != 5 {
		t.Fatalf("%d results, want 5", len(out.Events))
	}
	for i, a := range out.Events {
		if a.Seq != uint64(2+i) || a.ID != fmt.Sprint("b", i) {
			t.Fatalf("item %d = %+v, want seq %d in input order", i, a, 2+i)
		}
	}
}

func TestPostBatchAllOrNothing(t *testing.T) {
	g := startGateway(t)
	resp, body := g.postJSON(t, "/v1/events", `[
		{"type":"ok.one","data":1},
		{"type":"bad type","data":1},
		{"type":"ok.two"},
		{"type":"ok.three","data":1,"typo":true},
		{"type":"eventgate.webhook.disabled","data":1},
		{"type":"ok.four","data":1,"time":"yesterday"},
		{"type":5,"data":1}
	]`)
	p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error")
	want := []string{"/1/type", "/2/data", "/3/typo", "/4/type", "/5/time", "/6/type"}
	if got := p.fields(); !slices.Equal(got, want) {
		t.Fatalf("error fields = %v, want %v", got, want)
	}
	if g.Ring.Bounds().Newest != 0 {
		t.Fatal("an invalid batch stored events")
	}
}

func TestPostErrors(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.MaxBody = 2048; o.API.MaxBatch = 3 })
	g.postJSON(t, "/v1/events", `{"type":"kept.event","data":1}`)
	cases := []struct {
		name, ctype, body string
		status            int
		slug              string
		fields            []string
	}{
		{"malformed", "application/json", `{"type":`, 400, "malformed-json", nil},
		{"empty body", "application/json", ``, 400, "malformed-json", nil},
		{"trailing data", "application/json", `{"type":"a.b","data":1} {}`, 400, "malformed-json", nil},
		{"not an object", "application/json", `"hello"`, 422, "validation-error", []string{""}},
		{"too large", "application/json", `{"type":"a.b","data":"` + strings.Repeat("x", 4096) + `"}`, 413, "body-too-large", nil},
		{"text/plain", "text/plain", `{"type":"a.b","data":1}`, 415, "unsupported-media-type", nil},
		{"no content type", "", `{"type":"a.b","data":1}`, 415, "unsupported-media-type", nil},
		{"missing type", "application/json", `{"data":1}`, 422, "validation-error", []string{"/type"}},
		{"type too long", "application/json", `{"type":"` + strings.Repeat("a", 129) + `","data":1}`, 422, "validation-error", []string{"/type"}},
		{"bad pattern chars", "application/json", `{"type":"order.*","data":1}`, 422, "validation-error", []string{"/type"}},
		{"id too long", "application/json", `{"type":"a.b","id":"` + strings.Repeat("i", 129) + `","data":1}`, 422, "validation-error", []string{"/id"}},
		{"reserved prefix", "application/json", `{"type":"eventgate.x","data":1}`, 422, "validation-error", []string{"/type"}},
		{"unknown field", "application/json", `{"type":"a.b","data":1,"tpye":"x"}`, 422, "validation-error", []string{"/tpye"}},
		{"names match exactly", "application/json", `{"TYPE":"a.b","data":1}`, 422, "validation-error", []string{"/TYPE"}},
		{"duplicate name", "application/json", `{"type":"a.b","type":"c.d","data":1}`, 400, "malformed-json", nil},
		{"invalid UTF-8", "application/json", "{\"type\":\"a.b\",\"data\":\"\xff\"}", 400, "malformed-json", nil},
		{"wrong JSON type", "application/json", `{"type":5,"data":1}`, 422, "validation-error", []string{"/type"}},
		{"batch item not an object", "application/json", `[{"type":"a.b","data":1},7]`, 422, "validation-error", []string{"/1"}},
		{"every bad item named", "application/json", `[{"type":"a.b","data":1,"x":1},{"type":"a.b","data":1},{"data":1}]`, 422, "validation-error", []string{"/0/x", "/2/type"}},
		{"empty batch", "application/json", `[]`, 422, "validation-error", []string{""}},
		{"batch over max", "application/json", `[{"type":"a.b","data":1},{"type":"a.b","data":1},{"type":"a.b","data":1},{"type":"a.b","data":1}]`, 422, "validation-error", []string{""}},
		{"batch malformed", "application/json", `[{"type":"a.b","data":1},`, 400, "malformed-json", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := g.do(t, http.MethodPost, "/v1/events", c.ctype, []byte(c.body))
			p := wantProblem(t, resp, body, c.status, c.slug)
			if c.fields != nil && !slices.Equal(p.fields(), c.fields) {
				t.Fatalf("fields = %v, want %v", p.fields(), c.fields)
			}
		})
	}
	if n := g.Ring.Bounds().Newest; n != 1 {
		t.Fatalf("newest = %d after rejected requests, want 1 (nothing lost, nothing added)", n)
	}
	if _, body := g.do(t, http.MethodGet, "/v1/events/1", "", nil); decode[storedEvent](t, body).Type != "kept.event" {
		t.Fatal("the accepted event was lost")
	}
}

func TestIdempotentRepeat(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 3 })
	resp, body := g.postJSON(t, "/v1/events", `{"id":"k1","source":"/s","type":"a.b","data":1}`)
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = g.postJSON(t, "/v1/events", `{"id":"k1","source":"/s","type":"a.b","data":"changed"}`)
	wantStatus(t, resp, body, http.StatusOK)
	if a := decode[appended](t, body); a.Seq != 1 || !a.Duplicate {
		t.Fatalf("repeat = %+v, want the original seq 1", a)
	}
	// In a batch: new events get new seqs, the repeat its original one.
	resp, body = g.postJSON(t, "/v1/events", `[{"id":"k2","source":"/s","type":"a.b","data":1},{"id":"k1","source":"/s","type":"a.b","data":1}]`)
	wantStatus(t, resp, body, http.StatusAccepted)
	out := decode[struct{ Events []appended }](t, body)
	if out.Events[0].Seq != 2 || out.Events[0].Duplicate || out.Events[1].Seq != 1 || !out.Events[1].Duplicate {
		t.Fatalf("batch = %+v", out.Events)
	}
	// Wrap-around: seqs 2,3 then 4 overwrites seq 1 (k1); k1 is new again.
	g.postJSON(t, "/v1/events", `{"id":"k3","source":"/s","type":"a.b","data":1}`)
	g.postJSON(t, "/v1/events", `{"id":"k4","source":"/s","type":"a.b","data":1}`)
	resp, body = g.postJSON(t, "/v1/events", `{"id":"k1","source":"/s","type":"a.b","data":1}`)
	if g.NATS {
		// JetStream remembers an id for its duplicate window (2 minutes),
		// not for as long as the event is stored: k1 is still a repeat of
		// seq 1, although seq 1 has left the stream (docs/NATS.md).
		wantStatus(t, resp, body, http.StatusOK)
		if a := decode[appended](t, body); a.Seq != 1 || !a.Duplicate {
			t.Fatalf("k1 within the duplicate window = %+v, want a repeat of seq 1", a)
		}
		return
	}
	wantStatus(t, resp, body, http.StatusAccepted)
	if a := decode[appended](t, body); a.Seq != 5 || a.Duplicate {
		t.Fatalf("k1 after overwrite = %+v, want stored anew as 5", a)
	}
}

func TestReplay(t *testing.T) {
	g := startGateway(t, func(o *options) { o.Capacity = 10 })
	resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	empty := decode[replayPage](t, body)
	if len(empty.Events) != 0 || empty.Oldest != 0 || empty.Newest != 0 || empty.Next != 0 || empty.Epoch == "" {
		t.Fatalf("empty replay = %+v", empty)
	}
	types := []string{"order.created", "user.created", "order.item.added", "order.paid"}
	for i := range 14 { // 1..14; the ring keeps 5..14
		g.postJSON(t, "/v1/events", map[string]any{"type": types[i%len(types)], "data": i})
	}
	_, body = g.do(t, http.MethodGet, "/v1/events?after=2&limit=3", "", nil)
	p := decode[replayPage](t, body)
	if p.Gap == nil || p.Gap.From != 3 || p.Gap.To != 4 || p.Oldest != 5 || p.Newest != 14 || p.Epoch != empty.Epoch {
		t.Fatalf("page = %+v, want gap 3..4, oldest 5, newest 14", p)
	}
	if len(p.Events) != 3 || p.Events[0].Seq != 5 || p.Next != 7 {
		t.Fatalf("page events %d from %d, next %d; want 3 from 5, next 7", len(p.Events), p.Events[0].Seq, p.Next)
	}
	// Paging with a filter visits each match exactly once.
	var seen []uint64
	after := uint64(4)
	for range 20 {
		_, body = g.do(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=2&type=order.*", after), "", nil)
		p = decode[replayPage](t, body)
		for _, e := range p.Events {
			seen = append(seen, e.Seq)
		}
		if len(p.Events) == 0 {
			break
		}
		after = p.Next
	}
	if want := []uint64{5, 8, 9, 12, 13}; !slices.Equal(seen, want) { // order.created, order.paid
		t.Fatalf("order.* pages saw %v, want %v", seen, want)
	}
	// Repeatable and comma-separated type parameters.
	_, body = g.do(t, http.MethodGet, "/v1/events?type=user.created&type=order.item.added,nothing.else", "", nil)
	p = decode[replayPage](t, body)
	if len(p.Events) != 5 || p.Events[0].Type != "user.created" || p.Events[1].Type != "order.item.added" {
		t.Fatalf("multi-pattern replay = %+v", p.Events)
	}
	for _, q := range []string{"after=-1", "after=x", "limit=0", "limit=1001", "type=a..b", "type=>.x"} {
		resp, body = g.do(t, http.MethodGet, "/v1/events?"+q, "", nil)
		wantProblem(t, resp, body, http.StatusBadRequest, "bad-request")
	}
	for _, path := range []string{"/v1/events/4", "/v1/events/15", "/v1/events/0"} {
		resp, body = g.do(t, http.MethodGet, path, "", nil)
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
	}
	resp, body = g.do(t, http.MethodGet, "/v1/events/abc", "", nil)
	wantProblem(t, resp, body, http.StatusBadRequest, "bad-request")
}

func TestCloudEventsStructured(t *testing.T) {
	g := startGateway(t)
	ce := `{"specversion":"1.0","id":"ce-1","source":"https://shop.example/orders","type":"com.example.order.created",
		"subject":"order/1","time":"2026-11-26T10:00:00Z","datacontenttype":"application/json","data":{"n":1},
		"traceparent":"00-abc-def-01","priority":3,"sampled":true}`
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/cloudevents+json; charset=utf-8", []byte(ce))
	wantStatus(t, resp, body, http.StatusAccepted)
	_, body = g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	e := decode[storedEvent](t, body)
	if e.ID != "ce-1" || e.Source != "https://shop.example/orders" || e.Type != "com.example.order.created" || e.Subject != "order/1" ||
		e.DataContentType != "application/json" || string(e.Data) != `{"n":1}` {
		t.Fatalf("stored = %+v", e)
	}
	if e.Extensions["traceparent"] != "00-abc-def-01" || e.Extensions["priority"] != float64(3) || e.Extensions["sampled"] != true {
		t.Fatalf("extensions = %v", e.Extensions)
	}
	bad := []struct{ body, field string }{
		{`{"specversion":"0.3","id":"x","source":"/s","type":"a.b"}`, "/specversion"},
		{`{"specversion":"1.0","source":"/s","type":"a.b"}`, "/id"},
		{`{"specversion":"1.0","id":"x","source":"/s","type":"not a type"}`, "/type"},
		{`{"specversion":"1.0","id":"x","source":"/s","type":"a.b","Bad_Ext":"v"}`, "/Bad_Ext"},
		{`{"specversion":"1.0","id":"x","source":"/s","type":"a.b","obj":{"a":1}}`, "/obj"},
		{`{"specversion":"1.0","id":"x","source":"/s","type":"a.b","data":1,"data_base64":"AA=="}`, "/data_base64"},
		{`{"specversion":"1.0","id":"x","source":"/s","type":"a.b","seq":"7"}`, "/seq"},
	}
	for _, c := range bad {
		resp, body := g.do(t, http.MethodPost, "/v1/events", "application/cloudevents+json", []byte(c.body))
		p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error")
		if !slices.Contains(p.fields(), c.field) {
			t.Errorf("%s: fields %v, want %s", c.body, p.fields(), c.field)
		}
	}
}

func TestCloudEventsBatch(t *testing.T) {
	g := startGateway(t)
	batch := `[{"specversion":"1.0","id":"1","source":"/s","type":"a.one","data":1},
		{"specversion":"1.0","id":"2","source":"/s","type":"a.two","data_base64":"aGVsbG8=","datacontenttype":"text/plain"}]`
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/cloudevents-batch+json", []byte(batch))
	wantStatus(t, resp, body, http.StatusAccepted)
	if out := decode[struct{ Events []appended }](t, body); len(out.Events) != 2 || out.Events[1].Seq != 2 {
		t.Fatalf("batch answer = %s", body)
	}
	_, body = g.do(t, http.MethodGet, "/v1/events/2", "", nil)
	if e := decode[storedEvent](t, body); e.DataBase64 != "aGVsbG8=" || e.DataContentType != "text/plain" {
		t.Fatalf("stored = %+v", e)
	}
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/cloudevents-batch+json",
		[]byte(`[{"specversion":"1.0","id":"3","source":"/s","type":"a.b"},{"specversion":"1.0","id":"4","type":"a.b"}]`))
	if p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error"); !slices.Equal(p.fields(), []string{"/1/source"}) {
		t.Fatalf("fields = %v", p.fields())
	}
	if g.Ring.Bounds().Newest != 2 {
		t.Fatal("an invalid CloudEvents batch stored events")
	}
}

func TestCloudEventsBinary(t *testing.T) {
	g := startGateway(t)
	ceHeaders := func(extra ...string) []string {
		return append([]string{"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "/sensors/7", "ce-type", "sensor.reading"}, extra...)
	}
	// JSON body: kept as data; percent-encoded header values decoded.
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"celsius":21.5}`),
		ceHeaders("ce-subject", "room%20%C3%A9t%C3%A9", "ce-time", "2026-11-26T10:00:00Z", "ce-traceparent", "00-1-2-01")...)
	wantStatus(t, resp, body, http.StatusAccepted)
	_, body = g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	e := decode[storedEvent](t, body)
	if e.ID != "bin-1" || e.Source != "/sensors/7" || e.Subject != "room été" || string(e.Data) != `{"celsius":21.5}` ||
		e.DataContentType != "application/json" || e.Extensions["traceparent"] != "00-1-2-01" {
		t.Fatalf("stored = %+v", e)
	}
	// Non-JSON body: data_base64 with its content type.
	raw := []byte{0xde, 0xad, 0xbe, 0xef, 0x00}
	h := ceHeaders()
	h[3] = "bin-2"
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/octet-stream", raw, h...)
	wantStatus(t, resp, body, http.StatusAccepted)
	_, body = g.do(t, http.MethodGet, "/v1/events/2", "", nil)
	e = decode[storedEvent](t, body)
	if e.DataBase64 != base64.StdEncoding.EncodeToString(raw) || e.DataContentType != "application/octet-stream" || e.Data != nil {
		t.Fatalf("stored = %+v", e)
	}
	// Invalid: a type outside the grammar, a bad percent-encoding.
	h = ceHeaders()
	h[7] = "com example"
	resp, body = g.do(t, http.MethodPost, "/v1/events", "text/plain", []byte("x"), h...)
	if p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "validation-error"); !slices.Contains(p.fields(), "/type") {
		t.Fatalf("fields = %v", p.fields())
	}
	h = ceHeaders("ce-subject", "bad%zz")
	h[3] = "bin-3"
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{}`), h...)
	wantStatus(t, resp, body, http.StatusAccepted) // not percent-encoding: taken literally (issue 16)
	if e := decode[storedEvent](t, mustGet(t, g, "/v1/events/3")); e.Subject != "bad%zz" {
		t.Fatalf("subject = %q, want it literally", e.Subject)
	}
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{not json`), ceHeaders()...)
	wantProblem(t, resp, body, http.StatusBadRequest, "malformed-json")
}

func TestAPIKeys(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.Keys = []string{"k-one", "k-two"} })
	ev := []byte(`{"type":"a.b","data":1}`)
	for _, auth := range []string{"", "Bearer wrong", "Basic k-one", "Bearer k-one-extra", "k-one"} {
		resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", ev, "Authorization", auth)
		wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
	}
	resp, body := g.do(t, http.MethodGet, "/v1/events?access_token=k-one", "", nil)
	wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized") // query keys only on /v1/stream
	for _, key := range []string{"k-one", "k-two"} {
		resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", ev, "Authorization", "Bearer "+key)
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, body := g.do(t, http.MethodGet, path, "", nil)
		wantStatus(t, resp, body, http.StatusOK)
	}
}

func TestOperations(t *testing.T) {
	g := startGateway(t)
	g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	g.postJSON(t, "/v1/events", `{"type":"a.b"}`)
	resp, body := g.do(t, http.MethodGet, "/metrics", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{
		`eventgate_events_ingested_total{result="accepted"} 1`,
		`eventgate_events_ingested_total{result="rejected"} 1`,
		`eventgate_buffer_newest_seq 1`,
		`eventgate_buffer_capacity_events 1000`,
		`eventgate_ingest_duration_seconds_count 1`,
		`eventgate_http_requests_total{code="202",method="POST",route="/v1/events"} 1`,
		`eventgate_http_requests_total{code="422",method="POST",route="/v1/events"} 1`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, body = g.do(t, http.MethodGet, "/", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !bytes.Contains(body, []byte("<html")) {
		t.Fatal("/ does not serve the dashboard")
	}
	// Unknown API paths are 404 for every method; a known path with the
	// wrong method is 405.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nothing"}, {http.MethodPost, "/v1/nothing"}, {http.MethodPut, "/v1/nothing/x"}, {http.MethodGet, "/v1"},
	} {
		resp, body = g.do(t, c.method, c.path, "", nil)
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/v1/events"}, {http.MethodPost, "/v1/events/5"},
	} {
		resp, body = g.do(t, c.method, c.path, "", nil)
		wantProblem(t, resp, body, http.StatusMethodNotAllowed, "method-not-allowed")
	}

	// Draining: readyz and ingest answer 503, reads still work.
	if err := g.Pub.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, body = g.do(t, http.MethodGet, "/readyz", "", nil)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
	resp, body = g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	resp, body = g.do(t, http.MethodGet, "/healthz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
}

var _ = api.DefaultMaxBody

// mustGet GETs path and returns the body of a 200.
func mustGet(t *testing.T, g *testGateway, path string) []byte {
	t.Helper()
	resp, body := g.do(t, http.MethodGet, path, "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	return body
}

// TestCloudEventsBinaryHeadersAsSDKsSendThem: the official SDKs write
// ce-* values unencoded, Node's fetch as ISO-8859-1 bytes. Each value is
// stored as the user wrote it, never with U+FFFD for bytes sent.
func TestCloudEventsBinaryHeadersAsSDKsSendThem(t *testing.T) {
	g := startGateway(t)
	for i, tc := range []struct{ header, want string }{
		{"50% off", "50% off"},
		{"a%41b", "a%41b"},
		{"\xfcn\xefc\xf8d\xe9", "ünïcødé"},
		{"caf%C3%A9 100%25", "café 100%"},
		{"ünïcødé", "ünïcødé"},
	} {
		raw := tc.header
		id := fmt.Sprintf("sdk-%d", i)
		resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{}`),
			"ce-specversion", "1.0", "ce-id", id, "ce-source", "/sdk", "ce-type", "sdk.sent", "ce-subject", raw)
		wantStatus(t, resp, body, http.StatusAccepted)
		seq := decode[appended](t, body).Seq
		if e := decode[storedEvent](t, mustGet(t, g, fmt.Sprintf("/v1/events/%d", seq))); e.Subject != tc.want {
			t.Errorf("ce-subject %q stored as %q, want %q", tc.header, e.Subject, tc.want)
		}
	}
}
