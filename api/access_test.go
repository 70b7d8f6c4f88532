package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// doHost is g.do with r.Host set to host (a Host header set through
// req.Header is ignored by net/http's client).
func (g *testGateway) doHost(t testing.TB, host, method, path, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// A page on a name that rebinds to 127.0.0.1 reaches a loopback gateway
// with its own name as Host: nothing it asks is answered.
func TestHostGuardRefusesRebindingOnLoopback(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.Addr = "127.0.0.1:8080"; o.API.AllowedHosts = []string{"GW.example.com."} })
	hook := []byte(`{"url":"https://exfil.attacker.example/x","types":[">"]}`)
	for _, host := range []string{"rebind.attacker.example", "rebind.attacker.example:8080", "localhost.attacker.example",
		"127.0.0.1.nip.io", "evil.localhost", "example.com", "[::2]:80"} {
		resp, body := g.doHost(t, host, http.MethodPost, "/v1/webhooks", "application/json", hook)
		wantProblem(t, resp, body, http.StatusMisdirectedRequest, "misdirected-request")
		for _, path := range []string{"/v1/events", "/", "/healthz"} {
			resp, body := g.doHost(t, host, http.MethodGet, path, "", nil)
			wantProblem(t, resp, body, http.StatusMisdirectedRequest, "misdirected-request")
		}
	}
	if hooks, err := g.Disp.List(context.Background()); err != nil || len(hooks) != 0 {
		t.Fatalf("a refused request registered %d webhooks (%v)", len(hooks), err)
	}
	for _, host := range []string{"localhost", "LOCALHOST:8080", "localhost.:8080", "127.0.0.1", "127.0.0.1:1", "127.0.0.1.",
		"[::1]", "[::1]:8080", "gw.example.com", "GW.EXAMPLE.COM.:443"} {
		resp, body := g.doHost(t, host, http.MethodGet, "/v1/events", "", nil)
		wantStatus(t, resp, body, http.StatusOK)
	}
}

func TestHostGuardElsewhere(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:80", "192.0.2.1:80", ""} {
		open := startGateway(t, func(o *options) { o.API.Addr = addr })
		resp, body := open.doHost(t, "gw.example.net", http.MethodGet, "/v1/events", "", nil)
		wantStatus(t, resp, body, http.StatusOK) // no --allowed-hosts: any host
	}
	for _, addr := range []string{"localhost:8080", "[::1]:8080", "127.0.0.2:1"} {
		lo := startGateway(t, func(o *options) { o.API.Addr = addr })
		resp, body := lo.doHost(t, "gw.example.net", http.MethodGet, "/v1/events", "", nil)
		wantProblem(t, resp, body, http.StatusMisdirectedRequest, "misdirected-request")
	}

	listed := startGateway(t, func(o *options) { o.API.Addr = ":8080"; o.API.AllowedHosts = []string{"gw.example.net"} })
	resp, body := listed.doHost(t, "gw.example.net:443", http.MethodGet, "/v1/events", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = listed.doHost(t, "localhost:8080", http.MethodGet, "/v1/events", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = listed.doHost(t, "other.example.net", http.MethodGet, "/v1/events", "", nil)
	wantProblem(t, resp, body, http.StatusMisdirectedRequest, "misdirected-request")
}

// Bearer is a case-insensitive scheme (RFC 9110 §11.1); blanks around the
// token are tolerated.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.Keys = []string{"k1"} })
	for _, h := range []string{"Bearer k1", "bearer k1", "BEARER k1", "bEaReR k1", "Bearer  k1", "Bearer\tk1", " Bearer k1 "} {
		resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil, "Authorization", h)
		wantStatus(t, resp, body, http.StatusOK)
	}
	for _, h := range []string{"Bearerk1", "Basic k1", "Bearer", "Bearer k2", "k1", "Bearer k1 k1"} {
		resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil, "Authorization", h)
		wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized")
	}
}

// With --ingest-rate 5 (burst 5), rapid single posts stop at the sixth;
// a batch bigger than the burst is refused and says so.
func TestIngestRateIsATokenBucket(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.IngestRate = 5 })
	one := []byte(`{"type":"a.b","data":1}`)
	codes := []int{}
	for range 20 {
		resp, _ := g.do(t, http.MethodPost, "/v1/events", "application/json", one)
		codes = append(codes, resp.StatusCode)
	}
	accepted := 0
	for _, c := range codes {
		if c == http.StatusAccepted {
			accepted++
		}
	}
	// 20 posts take well under a second here, so at most 5 plus the few
	// tokens refilled meanwhile pass (5/s).
	if accepted < 5 || accepted > 8 {
		t.Fatalf("%d of 20 rapid posts accepted (%v), want 5 (the burst) plus what refilled", accepted, codes)
	}
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", one)
	p := wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(p.Detail, "--ingest-rate") {
		t.Fatalf("429 with Retry-After %q, detail %q", resp.Header.Get("Retry-After"), p.Detail)
	}

	big := startGateway(t, func(o *options) { o.API.IngestRate = 1; o.API.IngestBurst = 3 })
	batch := func(n int) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(`{"type":"a.b","data":1},`, n), ",") + "]")
	}
	resp, body = big.do(t, http.MethodPost, "/v1/events", "application/json", batch(4))
	p = wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(p.Detail, "--ingest-burst") || !strings.Contains(p.Detail, "4 events") {
		t.Fatalf("a batch over the burst: Retry-After %q, detail %q", resp.Header.Get("Retry-After"), p.Detail)
	}
	resp, body = big.do(t, http.MethodPost, "/v1/events", "application/json", batch(3))
	wantStatus(t, resp, body, http.StatusAccepted) // the whole burst at once
	resp, body = big.do(t, http.MethodPost, "/v1/events", "application/json", one)
	wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	if n := big.Ring.Bounds().Newest; n != 3 {
		t.Fatalf("stored %d events, want 3", n)
	}
}

// The limiter counts per identity auth settled on, not per spelling of
// the header; open, per TCP peer, never per a header the client invents.
func TestIngestRateKeyedOnIdentity(t *testing.T) {
	one := []byte(`{"type":"a.b","data":1}`)
	g := startGateway(t, func(o *options) { o.API.IngestRate = 1; o.API.Keys = []string{"k", "other"} })
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", one, "Authorization", "Bearer k")
	wantStatus(t, resp, body, http.StatusAccepted)
	for _, h := range []string{"Bearer  k", "Bearer\tk", "bearer k", "Bearer k ", "BEARER   k\t"} {
		resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", one, "Authorization", h)
		wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	}
	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/json", one, "Authorization", "Bearer other")
	wantStatus(t, resp, body, http.StatusAccepted) // another key, another bucket

	open := startGateway(t, func(o *options) { o.API.IngestRate = 1 })
	resp, body = open.do(t, http.MethodPost, "/v1/events", "application/json", one)
	wantStatus(t, resp, body, http.StatusAccepted)
	for _, hv := range [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Real-IP", "203.0.113.8"}, {"Forwarded", "for=203.0.113.9"}, {"Authorization", "Bearer made-up"}} {
		resp, body := open.do(t, http.MethodPost, "/v1/events", "application/json", one, hv[0], hv[1])
		wantProblem(t, resp, body, http.StatusTooManyRequests, "rate-limited")
	}
}

// The limiter keeps at most IngestClients buckets, and says so in metrics.
func TestIngestLimiterBucketsAreBounded(t *testing.T) {
	one := []byte(`{"type":"a.b","data":1}`)
	g := startGateway(t, func(o *options) { o.API.IngestRate = 1; o.API.IngestClients = 1; o.API.Keys = []string{"a", "b"} })
	post := func(key string) int {
		resp, _ := g.do(t, http.MethodPost, "/v1/events", "application/json", one, "Authorization", "Bearer "+key)
		return resp.StatusCode
	}
	if c := []int{post("a"), post("a"), post("b")}; c[0] != 202 || c[1] != 429 || c[2] != 202 {
		t.Fatalf("statuses %v, want [202 429 202]", c)
	}
	mfs, err := g.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetGauge() != nil {
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
			if m.GetCounter() != nil {
				got[mf.GetName()] += m.GetCounter().GetValue()
			}
		}
	}
	if got["eventgate_ingest_limiter_buckets"] != 1 || got["eventgate_ingest_limiter_evictions_total"] != 1 {
		t.Fatalf("buckets %v, evictions %v; want 1 and 1", got["eventgate_ingest_limiter_buckets"], got["eventgate_ingest_limiter_evictions_total"])
	}
}

// Every answer carries the security headers; the dashboard its CSP.
func TestSecurityHeadersAndHead(t *testing.T) {
	g := startGateway(t, func(o *options) { o.API.Addr = "127.0.0.1:0" })
	check := func(what string, h http.Header) {
		t.Helper()
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", what, k, h.Get(k), v)
			}
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q lacks frame-ancestors 'none'", what, h.Get("Content-Security-Policy"))
		}
	}
	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/v1/events", "/v1/nope"} {
		resp, _ := g.do(t, http.MethodGet, path, "", nil)
		check("GET "+path, resp.Header)
	}
	resp, _ := g.doHost(t, "rebind.attacker.example", http.MethodGet, "/", "", nil)
	check("421", resp.Header)
	resp, _ = g.do(t, http.MethodGet, "/", "", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("dashboard CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("dashboard CSP %q allows unsafe sources", csp)
	}

	// HEAD: as GET, without a body. openapi.yaml lists GET only, so these
	// go around the spec-checking client.
	client := g.Server.Client()
	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/app.js"} {
		get, err := client.Get(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		get.Body.Close()
		head, err := client.Head(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(head.Body)
		head.Body.Close()
		if head.StatusCode != http.StatusOK || len(b) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s = %d, %d body bytes, Content-Type %q (GET: %q)", path, head.StatusCode, len(b), head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
		}
		check("HEAD "+path, head.Header)
	}
}
