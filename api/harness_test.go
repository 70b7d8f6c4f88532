package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/internal/gatewaytest"
	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	goleak.VerifyTestMain(m)
}

// testGateway is a real gateway behind a real httptest server, with an
// HTTP client whose every answer is checked against openapi.yaml.
type testGateway struct {
	URL      string
	Client   *http.Client // validates responses against the spec
	Ring     store.Log    // the event log: a *store.Ring, or a *natsjs.Log on NATS
	NATS     bool         // the gateway runs on the NATS store
	Pub      *gateway.Publisher
	Hub      *gateway.Hub
	Disp     *dispatch.Dispatcher
	Registry *prometheus.Registry
	Server   *httptest.Server
}

// options tweaks a test gateway's configuration before it starts.
type options struct {
	Capacity int
	API      api.Config
	Hub      gateway.HubConfig
	Disp     dispatch.Config
	// NATS, when set, runs the gateway on the NATS store with these
	// names (several gateways given the same share one log, registry and
	// queues). When nil, the gateway runs on the NATS store anyway while
	// a test runs the suite on NATS (natsSuite), on names of its own.
	NATS *natsStore
	// RecordDrops wires Hub.OnDrop to Publisher.RecordStreamDrop, as main does.
	RecordDrops bool
	// WrapLog, when set, wraps the log the gateway appends to (to make it
	// fail or stall on cue).
	WrapLog func(store.Log) store.Log
}

// natsStore says where a NATS-backed test gateway keeps its state.
type natsStore struct {
	Conn     *nats.Conn
	Stream   string // also names the prefix, the bucket and the delivery log
	Memory   bool
	Replicas int           // default 1
	Timeout  time.Duration // each JetStream call; default natsjs.DefaultTimeout
}

// natsSuite is the connection the NATS pass of the API suite runs on
// (TestSuiteOnNATS); nil runs it on the ring. Tests do not run in
// parallel in this package, so one variable switches the backend.
var natsSuite *nats.Conn

var natsNames atomic.Int64

// startGateway starts a gateway and registers its orderly shutdown (the
// contract's order) with t.Cleanup.
func startGateway(t testing.TB, tweak ...func(*options)) *testGateway {
	t.Helper()
	o := options{Capacity: 1000}
	o.Disp.AllowPrivateTargets = true // receivers are httptest servers on 127.0.0.1
	for _, f := range tweak {
		f(&o)
	}
	if o.NATS == nil && natsSuite != nil {
		o.NATS = &natsStore{Conn: natsSuite, Stream: fmt.Sprintf("API%d", natsNames.Add(1)), Memory: true}
	}
	var ring store.Log
	capacity := func() int { return o.Capacity }
	if o.NATS != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := natsjs.Open(ctx, natsjs.Config{Conn: o.NATS.Conn, Stream: o.NATS.Stream, Prefix: strings.ToLower(o.NATS.Stream),
			Memory: o.NATS.Memory, MaxMsgs: int64(o.Capacity), Replicas: o.NATS.replicas(), Timeout: o.NATS.Timeout})
		if err == nil && o.Disp.Webhooks == nil {
			o.Disp.Webhooks, err = l.OpenWebhooks(ctx)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		ring = l
	} else {
		r := store.NewRing(o.Capacity)
		ring, capacity = r, r.Capacity
	}
	reg := prometheus.NewRegistry()
	if o.WrapLog != nil {
		ring = o.WrapLog(ring)
	}
	pub := gateway.NewPublisher(ring)
	o.Hub.Registerer, o.Disp.Registerer = reg, reg
	if o.RecordDrops {
		o.Hub.OnDrop = func(d gateway.Drop) { _ = pub.RecordStreamDrop(context.Background(), d) }
	}
	hub := gateway.NewHub(ring, o.Hub)
	disp := dispatch.New(pub, o.Disp)
	cfg := o.API
	cfg.Publisher, cfg.Hub, cfg.Dispatcher, cfg.Registry, cfg.Capacity = pub, hub, disp, reg, capacity
	srv := api.New(cfg)
	ts := httptest.NewServer(srv)

	t.Cleanup(gatewaytest.Run(pub, hub, disp, ts, ring, 10*time.Second))
	return &testGateway{
		URL: ts.URL, Ring: ring, NATS: o.NATS != nil, Pub: pub, Hub: hub, Disp: disp, Registry: reg, Server: ts,
		Client: &http.Client{Transport: newSpecCheck(t, ts.URL, ts.Client().Transport), Timeout: 30 * time.Second},
	}
}

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

// specCheck is a RoundTripper that validates every answer (status, headers,
// body) against openapi.yaml, so spec and code cannot drift. Requests are
// not validated: tests send bad ones on purpose.
type specCheck struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper
}

func newSpecCheck(t testing.TB, serverURL string, next http.RoundTripper) http.RoundTripper {
	t.Helper()
	specOnce.Do(func() {
		specDoc, specErr = openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	})
	if specErr != nil {
		t.Fatalf("load openapi.yaml: %v", specErr)
	}
	doc := *specDoc
	doc.Servers = openapi3.Servers{{URL: serverURL}}
	router, err := gorillamux.NewRouter(&doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &specCheck{t: t, router: router, next: next}
}

func (s *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || resp.Header.Get("Content-Type") == "text/event-stream" || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			s.t.Errorf("openapi.yaml has no operation for %s %s (answered %d)", req.Method, req.URL.Path, resp.StatusCode)
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		s.t.Errorf("%s %s answered %d, which openapi.yaml does not allow: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

// do sends a request and returns the answer with its whole body.
func (g *testGateway) do(t testing.TB, method, path, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// postJSON posts body (a string or a value to marshal) as application/json.
func (g *testGateway) postJSON(t testing.TB, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return g.do(t, http.MethodPost, path, "application/json", b)
}

// decode unmarshals b into a new T, failing the test on error.
func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

// wantStatus fails the test unless resp has the status.
func wantStatus(t testing.TB, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d, want %d; body: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
}

// problem is the decoded problem document of an error answer.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// wantProblem checks an error answer: status, problem+json and its type slug.
func wantProblem(t testing.TB, resp *http.Response, body []byte, status int, slug string) problem {
	t.Helper()
	wantStatus(t, resp, body, status)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	p := decode[problem](t, body)
	if p.Status != status || !strings.HasSuffix(p.Type, "/"+slug) || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem = %+v, want status %d and type .../%s", p, status, slug)
	}
	return p
}

// fields lists the error fields of a problem.
func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}
