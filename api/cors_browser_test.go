package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// appPage is a third-party app's page: it opens an EventSource and a
// WebSocket to the gateway named in ?gw=, with the key in ?key=, and once
// both are open posts an event with fetch. window.r records what happened.
const appPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>app</title></head>
<body><main id="out">starting</main>
<script>
const q = new URLSearchParams(location.search), gw = q.get("gw"), key = q.get("key");
const r = window.r = {sseOpen: false, wsOpen: false, sse: "", ws: "", sseError: false, wsError: false, posted: ""};
const show = () => { document.getElementById("out").textContent = JSON.stringify(r); };
const es = new EventSource(gw + "/v1/stream?types=cors.>&access_token=" + key);
es.onopen = () => { r.sseOpen = true; post(); show(); };
es.onmessage = e => { r.sse = JSON.parse(e.data).type; show(); };
es.onerror = () => { r.sseError = true; if (es.readyState === EventSource.CLOSED) show(); };
const ws = new WebSocket(gw.replace(/^http/, "ws") + "/v1/stream?types=cors.>&access_token=" + key);
ws.onopen = () => { r.wsOpen = true; post(); show(); };
ws.onmessage = e => {
  for (const line of e.data.split("\n")) if (line.startsWith('{"seq"')) r.ws = JSON.parse(line).type;
  show();
};
ws.onerror = () => { r.wsError = true; show(); };
function post(anyway) {
  if (r.posted || !anyway && !(r.sseOpen && r.wsOpen)) return;
  r.posted = "sending";
  fetch(gw + "/v1/events", {method: "POST", headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
      body: JSON.stringify({type: "cors.browser", data: {n: 1}})})
    .then(resp => resp.json().then(j => { r.posted = resp.status + " seq " + j.seq; show(); }))
    .catch(err => { r.posted = "error: " + err; show(); });
}
// A page whose streams are refused still tries the fetch.
setTimeout(() => post(true), 1500);
</script></body></html>`

// A real page on another origin subscribes (EventSource and WebSocket) and
// publishes (fetch, preflighted for Authorization) once its origin is in
// --cors-origins; from an origin that is not, Chromium gets nothing and
// nothing is stored.
func TestCORSInChromium(t *testing.T) {
	b := newBrowser(t)
	serve := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(appPage))
		}))
		t.Cleanup(s.Close)
		return s
	}
	app, other := serve(), serve()
	g := startGateway(t, withCORS(app.URL))

	open := func(t *testing.T, base string) *page {
		t.Helper()
		ctx, cancel := chromedp.NewContext(b.ctx)
		t.Cleanup(cancel)
		p := &page{t: t, ctx: ctx}
		if err := chromedp.Do(ctx); err != nil { // opens the tab
			t.Fatalf("open tab: %v", err)
		}
		p.run(chromedp.Navigate(base + "/?gw=" + url.QueryEscape(g.URL) + "&key=k1"))
		return p
	}

	t.Run("allowed origin", func(t *testing.T) {
		p := open(t, app.URL)
		// The streams may bring the event before fetch has read its answer.
		p.waitJS("the event on both streams and the fetch's answer",
			`r.sse === "cors.browser" && r.ws === "cors.browser" && r.posted !== "" && r.posted !== "sending"`)
		if got := eval[string](p, `r.posted`); got != "202 seq 1" {
			t.Fatalf("fetch from the page: %q, want 202 seq 1", got)
		}
		if eval[bool](p, `r.sseError || r.wsError`) {
			t.Fatalf("stream errors: %s", eval[string](p, `JSON.stringify(r)`))
		}
	})

	t.Run("other origin", func(t *testing.T) {
		p := open(t, other.URL)
		p.waitJS("refusals", `r.sseError && r.wsError && r.posted.startsWith("error")`)
		if got := eval[string](p, `JSON.stringify(r)`); eval[bool](p, `r.sseOpen || r.wsOpen || r.sse !== "" || r.ws !== ""`) {
			t.Fatalf("a page from another origin got a stream: %s", got)
		}
		// The refusals are the gateway's 403s (stream and preflight), not
		// a failure to connect.
		get := g.metric(t, "eventgate_http_requests_total", "route", "unmatched", "method", "GET", "code", "403")
		options := g.metric(t, "eventgate_http_requests_total", "route", "unmatched", "method", "OPTIONS", "code", "403")
		if get < 2 || options < 1 {
			t.Fatalf("403s: %v GET, %v OPTIONS; want the EventSource's and the WebSocket's, and the preflight's", get, options)
		}
		if newest := g.Ring.Bounds().Newest; newest != 1 {
			t.Fatalf("newest seq %d after the refused page, want 1 (its event must not be stored)", newest)
		}
	})
}
