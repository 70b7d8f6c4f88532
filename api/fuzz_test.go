package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// fuzzServer is an api.Server over a small ring, driven without sockets.
func fuzzServer(tb testing.TB) (*api.Server, *store.Ring) {
	ring := store.NewRing(64)
	tb.Cleanup(func() { _ = ring.Close() })
	pub := gateway.NewPublisher(ring)
	return api.New(api.Config{Publisher: pub, Hub: gateway.NewHub(ring, gateway.HubConfig{}),
		Dispatcher: dispatch.New(pub, dispatch.Config{}), MaxBatch: 16, MaxBody: 64 << 10}), ring
}

// checkIngest posts req and checks the invariants of every answer: a known
// status, never a 5xx, problem+json on errors, nothing stored on an error,
// and on success stored events that are valid one-line JSON with a valid
// type.
func checkIngest(t *testing.T, srv *api.Server, ring *store.Ring, req *http.Request) {
	before := ring.Bounds().Newest
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	after := ring.Bounds().Newest
	switch rec.Code {
	case http.StatusAccepted, http.StatusOK:
		for seq := before + 1; seq <= after; seq++ {
			r, err := ring.Get(context.Background(), seq)
			if err != nil {
				t.Fatal(err)
			}
			var e store.Event
			if err := json.Unmarshal(r.JSON, &e); err != nil || bytes.ContainsAny(r.JSON, "\r\n") {
				t.Fatalf("stored %q: %v", r.JSON, err)
			}
			if e.Seq != seq || !store.ValidType(e.Type) || gateway.IsReserved(e.Type) || e.ID == "" || (e.Data == nil && e.DataBase64 == "") {
				t.Fatalf("stored event breaks the contract: %s", r.JSON)
			}
		}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		if after != before {
			t.Fatalf("status %d stored %d events", rec.Code, after-before)
		}
		var p struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
		}
		if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != rec.Code || p.Type == "" {
			t.Fatalf("status %d without a problem document: %q", rec.Code, rec.Body)
		}
	default:
		t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
	}
}

func FuzzIngestJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"order.created","data":{"n":1}}`,
		`[{"type":"a.b","data":1},{"type":"a.c","data":null,"id":"x","source":"/s","subject":"s","time":"2026-11-26T10:00:00Z"}]`,
		`{"type":"a.b","data":1,"extra":1}`, `[]`, `{"type":"eventgate.x","data":1}`, `{"type":"a..b","data":1}`,
		"{\"type\":\"a.b\",\"data\":{\n\"multi\":\n\"line\"}}", `[{"type":"a.b","data":1},]`, `"x"`, `{"type":5}`,
	} {
		f.Add("application/json", []byte(s))
	}
	f.Add("application/cloudevents+json", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"a.b","data":1,"ext":"v"}`))
	f.Add("application/cloudevents-batch+json", []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"a.b","data_base64":"AA=="}]`))
	srv, ring := fuzzServer(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		checkIngest(t, srv, ring, req)
	})
}

func FuzzCloudEventsBinary(f *testing.F) {
	f.Add("1.0", "id-1", "/s", "a.b", "subj%20ect", "2026-11-26T10:00:00Z", "traceparent", "00-1", "application/json", []byte(`{"n":1}`))
	f.Add("1.0", "id-2", "/s", "a.b", "", "", "Bad_Ext", "v", "text/plain", []byte("hello"))
	f.Add("0.3", "", "", "bad type", "%zz", "yesterday", "x", "%", "", []byte{0xff})
	srv, ring := fuzzServer(f)
	f.Fuzz(func(t *testing.T, spec, id, source, typ, subject, tm, extName, extVal, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		for k, v := range map[string]string{"ce-specversion": spec, "ce-id": id, "ce-source": source, "ce-type": typ, "ce-subject": subject, "ce-time": tm, "ce-" + extName: extVal, "Content-Type": contentType} {
			if v != "" && validHeader(k, v) {
				req.Header.Set(k, v)
			}
		}
		if req.Header.Get("ce-specversion") == "" {
			req.Header.Set("ce-specversion", "1.0")
		}
		checkIngest(t, srv, ring, req)
	})
}

// validHeader reports whether a real HTTP request could carry k: v.
func validHeader(k, v string) bool {
	for _, c := range []byte(k) {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	for _, c := range []byte(v) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return k != ""
}
