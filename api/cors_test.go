package api_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/api"
)

const appOrigin = "https://app.example.com"

// withCORS configures the test gateway's --cors-origins and API key.
func withCORS(origins ...string) func(*options) {
	return func(o *options) {
		o.API.CORSOrigins = origins
		o.API.Keys = []string{"k1"}
	}
}

// preflight sends a CORS preflight as browsers do: no credentials. It goes
// around the spec check: preflights are CORS protocol, not operations of
// the API.
func (g *testGateway) preflight(t testing.TB, path, origin, method, headers string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	resp, err := g.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp
}

// varies reports whether resp's Vary names header.
func varies(resp *http.Response, header string) bool {
	for _, v := range resp.Header.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(name), header) {
				return true
			}
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// A preflight from a listed origin is answered without a key: 204 with
// the route's methods, the requested headers the API reads, and a max-age.
func TestCORSPreflightFromAllowedOrigin(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin, "https://*.example.org"))
	cases := []struct {
		path, origin, method, headers string
		methods, allowed              []string
	}{
		{"/v1/events", appOrigin, "POST", "authorization, content-type, ce-specversion, ce-type, x-evil",
			[]string{"GET", "POST"}, []string{"authorization", "content-type", "ce-specversion", "ce-type"}},
		{"/v1/webhooks/wh_x", "https://a.b.example.org", "PATCH", "Authorization,Content-Type",
			[]string{"GET", "PATCH", "DELETE"}, []string{"authorization", "content-type"}},
		{"/v1/stream", appOrigin, "GET", "authorization,last-event-id", []string{"GET"}, []string{"authorization", "last-event-id"}},
	}
	for _, c := range cases {
		resp := g.preflight(t, c.path, c.origin, c.method, c.headers)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("WWW-Authenticate") != "" {
			t.Fatalf("preflight %s %s = %d %v, want 204 without a key", c.method, c.path, resp.StatusCode, h)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != c.origin {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", c.path, got, c.origin)
		}
		if got := splitList(h.Get("Access-Control-Allow-Methods")); !slices.Equal(got, c.methods) {
			t.Errorf("%s: Access-Control-Allow-Methods = %q, want %q", c.path, got, c.methods)
		}
		if got := splitList(h.Get("Access-Control-Allow-Headers")); !slices.Equal(got, c.allowed) {
			t.Errorf("%s: Access-Control-Allow-Headers = %q, want %q", c.path, got, c.allowed)
		}
		if h.Get("Access-Control-Max-Age") == "" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Max-Age %q, Allow-Credentials %q: want a max-age and no credentials", c.path,
				h.Get("Access-Control-Max-Age"), h.Get("Access-Control-Allow-Credentials"))
		}
		for _, v := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
			if !varies(resp, v) {
				t.Errorf("%s: Vary %q lacks %s", c.path, h.Values("Vary"), v)
			}
		}
	}
}

// Requests from a listed origin get their usual answers, which scripts on
// that origin may read: Access-Control-Allow-Origin, Vary and the exposed
// headers, on success and on error alike.
func TestCORSAllowedOriginGetsItsAnswers(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin))
	auth := []string{"Origin", appOrigin, "Authorization", "Bearer k1"}
	check := func(resp *http.Response, body []byte, status int) {
		t.Helper()
		wantStatus(t, resp, body, status)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != appOrigin || !varies(resp, "Origin") {
			t.Fatalf("%s %s: Access-Control-Allow-Origin %q, Vary %q", resp.Request.Method, resp.Request.URL.Path, got, resp.Header.Values("Vary"))
		}
		exposed := splitList(resp.Header.Get("Access-Control-Expose-Headers"))
		for _, want := range []string{"Location", "Retry-After", "RateLimit-Remaining", "WWW-Authenticate"} {
			if !slices.Contains(exposed, want) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, want)
			}
		}
	}
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"order.created","data":{}}`), auth...)
	check(resp, body, http.StatusAccepted)
	resp, body = g.do(t, http.MethodGet, "/v1/events", "", nil, auth...)
	check(resp, body, http.StatusOK)
	resp, body = g.do(t, http.MethodGet, "/v1/events", "", nil, "Origin", appOrigin) // no key
	check(resp, body, http.StatusUnauthorized)
}

// Any other origin, however close to a listed one, gets 403 with a
// problem document, before authentication and routing.
func TestCORSOtherOriginsGet403(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin, "https://*.example.org"))
	for _, origin := range []string{
		"https://evil.example",
		"https://example.org",           // the wildcard's apex is not listed
		"https://example.org.evil.test", // a suffix is no subdomain
		"https://app.example.com.evil.test",
		"https://evilexample.org",
		"http://app.example.com",       // another scheme
		"https://app.example.com:8443", // another port
		"https://a.example.org:444",
		"null",
		"not an origin",
		"https://app.example.com/", // browsers never send a path
	} {
		resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil, "Origin", origin, "Authorization", "Bearer k1")
		p := wantProblem(t, resp, body, http.StatusForbidden, "origin-not-allowed")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || p.Title != "Origin not allowed" {
			t.Errorf("Origin %q: ACAO %q, problem %+v", origin, resp.Header.Get("Access-Control-Allow-Origin"), p)
		}
		resp, body = g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"a.b","data":{}}`),
			"Origin", origin, "Authorization", "Bearer k1")
		wantProblem(t, resp, body, http.StatusForbidden, "origin-not-allowed")
		if resp := g.preflight(t, "/v1/events", origin, "POST", "authorization"); resp.StatusCode != http.StatusForbidden ||
			resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %q = %d, ACAO %q; want 403 and none", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if b := g.Ring.Bounds(); b.Newest != 0 {
		t.Fatalf("events stored from refused origins: %+v", b)
	}
}

// With no --cors-origins, a foreign origin is refused too, and the
// gateway's own origin (the dashboard's) is served.
func TestCORSDefaultIsSameOriginOnly(t *testing.T) {
	g := startGateway(t)
	resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil, "Origin", appOrigin)
	wantProblem(t, resp, body, http.StatusForbidden, "origin-not-allowed")

	resp, body = g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"a.b","data":{}}`), "Origin", g.URL)
	wantStatus(t, resp, body, http.StatusAccepted)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || varies(resp, "Origin") {
		t.Fatalf("same-origin answer has CORS headers: %v", resp.Header)
	}
	st := g.dialStream(t, "/v1/stream", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {g.URL}}})
	st.hello()
}

// Requests without an Origin (curl, servers) are served as before: no
// CORS headers, and an OPTIONS is routed (405) rather than answered.
func TestCORSNoOriginUnchanged(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin))
	resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil, "Authorization", "Bearer k1")
	wantStatus(t, resp, body, http.StatusOK)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
		t.Fatalf("no-Origin answer has CORS headers: %v", resp.Header)
	}
	resp, body = g.do(t, http.MethodOptions, "/v1/events", "", nil, "Access-Control-Request-Method", "POST")
	wantProblem(t, resp, body, http.StatusMethodNotAllowed, "method-not-allowed")
}

// WebSocket upgrades from a listed origin are accepted; from another they
// get the 403 problem document, not the WebSocket library's text/plain.
func TestCORSWebSocketOrigins(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin, "https://*.example.org"))
	for _, origin := range []string{appOrigin, "https://x.example.org"} {
		st := g.dialStream(t, "/v1/stream?access_token=k1", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		st.hello()
		g.publishN(t, "order.created", 1, `{}`)
		if l := st.next(); l.Seq == 0 || !strings.Contains(l.Raw, `"order.created"`) {
			t.Fatalf("from %s: line %s, want the event", origin, l)
		}
		_ = st.conn.Close(websocket.StatusNormalClosure, "")
	}
	for _, origin := range []string{"https://evil.example", "https://example.org", "http://app.example.com", "null"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		conn, resp, err := websocket.Dial(ctx, g.wsURL("/v1/stream?access_token=k1"),
			&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		cancel()
		if err == nil {
			_ = conn.CloseNow()
			t.Fatalf("WebSocket from %s accepted", origin)
		}
		if resp == nil {
			t.Fatalf("WebSocket from %s: %v, no answer", origin, err)
		}
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp, body, http.StatusForbidden, "origin-not-allowed")
	}
}

// An EventSource from a listed origin gets its stream with the CORS
// headers, the key in access_token.
func TestCORSServerSentEventsFromAllowedOrigin(t *testing.T) {
	g := startGateway(t, withCORS(appOrigin))
	st := g.openSSE(t, "/v1/stream?access_token=k1", "Origin", appOrigin)
	if got := st.resp.Header.Get("Access-Control-Allow-Origin"); got != appOrigin || !varies(st.resp, "Origin") {
		t.Fatalf("SSE: Access-Control-Allow-Origin %q, Vary %q", got, st.resp.Header.Values("Vary"))
	}
	g.publishN(t, "order.created", 1, `{}`)
	for {
		m, err := st.next()
		if err != nil {
			t.Fatalf("SSE read: %v", err)
		}
		if strings.Contains(m.Data, `"order.created"`) {
			break
		}
	}
}

// Origins.Allows is the one matcher of --cors-origins.
func TestOriginsAllows(t *testing.T) {
	o, err := api.ParseOrigins([]string{"https://App.Example.com", "http://localhost:3000", "https://*.example.org",
		"https://*.ports.test:8443", "https://[::1]:9000", "http://10.0.0.5", "https://default.test:443"})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example.com":       true,
		"HTTPS://APP.EXAMPLE.COM":       true,
		"https://app.example.com:443":   true,
		"https://app.example.com.":      false,
		"https://app.example.com:444":   false,
		"http://app.example.com":        false,
		"https://www.example.com":       false,
		"http://localhost:3000":         true,
		"http://localhost":              false,
		"http://localhost:3001":         false,
		"https://localhost:3000":        false,
		"https://a.example.org":         true,
		"https://a.b.example.org":       true,
		"https://example.org":           false,
		"https://example.org.evil.test": false,
		"https://evilexample.org":       false,
		"https://a.example.org:8443":    false,
		"http://a.example.org":          false,
		"https://x.ports.test:8443":     true,
		"https://x.ports.test":          false,
		"https://[::1]:9000":            true,
		"https://[0::1]:9000":           true,
		"https://[::1]:9001":            false,
		"http://10.0.0.5:80":            true,
		"https://default.test":          true,
		"null":                          false,
		"":                              false,
		"https://*.example.org":         false,
		"https://a.example.org/":        false,
		"https://user@a.example.org":    false,
		"a.example.org":                 false,
	} {
		if got := o.Allows(origin); got != want {
			t.Errorf("Allows(%q) = %v, want %v", origin, got, want)
		}
	}
	if (*api.Origins)(nil).Allows("https://a.test") {
		t.Error("no origins allow one")
	}
}

func TestParseOriginsRefusesMalformed(t *testing.T) {
	for _, bad := range []string{
		"*", "null", "app.example.com", "//app.example.com", "https://", "https://app.example.com/",
		"https://app.example.com/path", "https://app.example.com?q", "https://app.example.com#f",
		"https://u:p@app.example.com", "https://app.example.com:", "https://app.example.com:0",
		"https://app.example.com:65536", "https://app.example.com:0443", "https://app.example.com:http", "https://*", "https://*.com",
		"https://a.*.example.com", "https://*example.com", "https://**.example.com", "https://*.10.0.0.1",
		"https://app..example.com", "https://app.example.com.", "https://bücher.example", "https://[::1",
		"https://[1.2.3.4]", "https://a b.example", "1https://a.example",
	} {
		if _, err := api.ParseOrigins([]string{"https://fine.example", bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseOrigins(%q) = %v, want an error naming it", bad, err)
		}
	}
	o, err := api.ParseOrigins([]string{" https://a.example ", "", "chrome-extension://abcdef"})
	if err != nil || o.Len() != 2 {
		t.Fatalf("ParseOrigins = %v, %v", o, err)
	}
}

func TestNewPanicsOnMalformedOrigin(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "CORSOrigins") {
			t.Fatalf("recover() = %v, want a panic naming CORSOrigins", r)
		}
	}()
	startGateway(t, withCORS("https://app.example.com/"))
}

// FuzzOriginsAllows checks Allows against a naive reading of the list: an
// allowed origin is, in lower case and without a default port, one listed
// exactly, or https on the default port with a host that ends in
// ".example.org" after at least one character.
func FuzzOriginsAllows(f *testing.F) {
	for _, s := range []string{"https://a.example.org", "https://example.org", "https://app.example.com", "HTTPS://App.Example.COM:443",
		"https://a.example.org.", "https://.example.org", "https://a..example.org", "https://x.example.org:443", "null", "https://[::1]"} {
		f.Add(s)
	}
	o, err := api.ParseOrigins([]string{appOrigin, "https://*.example.org"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		if !o.Allows(origin) {
			return
		}
		s := strings.TrimSuffix(strings.ToLower(origin), ":443")
		host, ok := strings.CutPrefix(s, "https://")
		wildcard := strings.HasSuffix(host, ".example.org") && len(host) > len(".example.org")
		if !ok || host != "app.example.com" && !wildcard ||
			strings.ContainsAny(host, "/?#@:*[] ") || strings.Contains(host, "..") || strings.HasPrefix(host, ".") {
			t.Fatalf("Allows(%q), which the list does not name", origin)
		}
	})
}
