package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The dashboard's second round (issue 17), driven in headless Chromium
// against a real gateway: the delivery drawer, the delivery log's status
// filter and paging, retry from the drawer; the stream's filter errors,
// buffered matches, paging back, jump and search; the rate chart; and the
// send form's two kinds of error at once.

func TestDashboardDeliveries(t *testing.T) {
	b := newBrowser(t)
	t.Run("Drawer", func(t *testing.T) { testDeliveryDrawer(t, b) })
	t.Run("RetryClearsRetrying", func(t *testing.T) { testRetryClearsRetrying(t, b) })
}

func TestDashboardStreamHistory(t *testing.T) {
	b := newBrowser(t)
	t.Run("InvalidFilter", func(t *testing.T) { testInvalidFilter(t, b) })
	t.Run("BufferedMatches", func(t *testing.T) { testBufferedMatches(t, b) })
	t.Run("SendBothErrors", func(t *testing.T) { testSendBothErrors(t, b) })
}

// hookSeq reads the seq from a Standard Webhooks webhook-id, msg_<epoch>_<seq>.
func hookSeq(r *http.Request) string {
	id := r.Header.Get("webhook-id")
	return id[strings.LastIndexByte(id, '_')+1:]
}

// logSeqs lists the seqs of the open delivery log's rows, top first.
func logSeqs(p *page, card string) string {
	p.t.Helper()
	return eval[string](p, card+`.querySelectorAll('tbody tr').length + ':' + [...`+card+`.querySelectorAll('tbody tr')].map(tr => tr.dataset.seq).join(',')`)
}

// testDeliveryDrawer: a receiver answers seq 1 with 500 and a body, then
// 200; it refuses seq 2 until told otherwise. The drawer shows both of
// seq 1's attempts with the body and content type of the 500, the event
// sent and its webhook-id, and never the secret; the log filters by status
// and pages back and forth; Retry in the drawer re-sends seq 2, marked
// manual, and the log follows.
func testDeliveryDrawer(t *testing.T, b *browser) {
	g := startGateway(t, func(o *options) { o.Disp.Schedule = []time.Duration{10 * time.Millisecond} })
	var fixed, seq1Failed atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch {
		case hookSeq(r) == "1" && seq1Failed.CompareAndSwap(false, true):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("database is down ✗ <b>not html</b>"))
		case hookSeq(r) == "2" && !fixed.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL, "description": "orders"})
	// One batch: seqs 1-4 for certain (a delivery.failed event of seq 2,
	// stored between single posts, would take seq 4).
	resp, body := g.postJSON(t, "/v1/events", []map[string]any{
		{"type": "order.created", "data": map[string]any{"n": 1}}, {"type": "order.paid", "data": map[string]any{"n": 2}},
		{"type": "order.created", "data": map[string]any{"n": 3}}, {"type": "order.created", "data": map[string]any{"n": 4}}})
	wantStatus(t, resp, body, http.StatusAccepted)
	for seq, want := range map[uint64]string{1: "succeeded", 2: "failed", 3: "succeeded", 4: "succeeded"} {
		// Not g.waitDelivery: its message shows a zero delivery, formatted
		// before it waits; and this setup once needed more than its 10 s.
		seen := ""
		eventually(t, 20*time.Second, fmt.Sprintf("seq %d %s", seq, want), func() bool {
			for _, d := range g.deliveries(t, h.ID, "?limit=1000") {
				if d.EventSeq == seq {
					if now := fmt.Sprintf("%s after %d attempts", d.Status, d.Attempts); now != seen && d.Status != want {
						seen = now
						t.Logf("seq %d: %s", seq, now) // says where it stood if this times out
					}
					return d.Status == want
				}
			}
			return false
		})
	}
	_, body = g.do(t, http.MethodGet, "/v1/events?limit=1", "", nil)
	epoch := decode[struct{ Epoch string }](t, body).Epoch

	// Two deliveries a page, so that four make two pages.
	p := b.open(t, g.URL+"/?dlvpage=2", desktopW, desktopH)
	p.recordViolations()
	p.run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("stream")))
	card := fmt.Sprintf(`document.querySelector('#wh-list li[data-id=%q]')`, h.ID)
	p.waitJS("the card", card+` !== null`)
	p.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-id=%q] button[aria-controls]`, h.ID))))
	p.waitJS("page 1", card+`.querySelectorAll('tbody tr').length === 2`)
	if got := logSeqs(p, card); got != "2:4,3" {
		t.Fatalf("page 1 = %s, want seqs 4,3", got)
	}
	btn := func(cls string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`li[data-id=%q] button.%s`, h.ID, cls))
	}
	p.run(chromedp.Click(btn("older")))
	p.waitJS("page 2", card+`.querySelector('tbody tr')?.dataset.seq === '2'`)
	if got := logSeqs(p, card); got != "2:2,1" {
		t.Fatalf("page 2 = %s, want seqs 2,1", got)
	}
	if got := eval[string](p, card+`.querySelector('.page-note').textContent`); got != "page 2" {
		t.Errorf("page note %q", got)
	}
	p.run(chromedp.Click(btn("newest")))
	p.waitJS("page 1 again", card+`.querySelector('tbody tr')?.dataset.seq === '4'`)

	// The status filter, then paging within it.
	sel := fmt.Sprintf(`#status-%s`, h.ID)
	setSelect := func(v string) {
		p.run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change')); })()`, sel, v)))
	}
	setSelect("failed")
	p.waitJS("only the failed one", card+`.querySelectorAll('tbody tr').length === 1 && `+card+`.querySelector('tbody tr').dataset.seq === '2'`)
	setSelect("succeeded")
	p.waitJS("succeeded, page 1", card+`.querySelectorAll('tbody tr[data-status="succeeded"]').length === 2 && `+card+`.querySelector('tbody tr').dataset.seq === '4'`)
	p.run(chromedp.Click(btn("older")))
	p.waitJS("succeeded, page 2", card+`.querySelectorAll('tbody tr').length === 1 && `+card+`.querySelector('tbody tr').dataset.seq === '1'`)
	if got := logSeqs(p, card); got != "1:1" {
		t.Fatalf("succeeded page 2 = %s, want seq 1", got)
	}

	// The drawer of seq 1: both attempts, the 500's body as text.
	p.waitJS("seq 1's row, clicked", fmt.Sprintf(`(c => c ? (c.click(), true) : false)(document.querySelector('li[data-id=%q] tr[data-seq="1"] td:nth-child(3)'))`, h.ID))
	p.waitJS("the drawer", `document.getElementById('drawer').open && document.getElementById('drawer').dataset.ready === 'true'`)
	attempts := eval[string](p, `JSON.stringify([...document.querySelectorAll('#drawer .attempt')].map(li => ({trigger: li.dataset.trigger, status: li.dataset.status, body: li.querySelector('pre.body')?.textContent ?? null, type: li.querySelector('.response-meta code')?.textContent ?? null})))`)
	var got []struct {
		Trigger, Status string
		Body, Type      *string
	}
	if err := json.Unmarshal([]byte(attempts), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Trigger != "scheduled" || got[0].Status != "500" || got[0].Body == nil || *got[0].Body != "database is down ✗ <b>not html</b>" ||
		got[0].Type == nil || *got[0].Type != "text/plain; charset=utf-8" || got[1].Trigger != "retry" || got[1].Status != "200" {
		t.Fatalf("attempts shown: %s", attempts)
	}
	if n := eval[int](p, `document.querySelectorAll('#drawer b').length`); n != 0 {
		t.Error("the response body was rendered as HTML")
	}
	text := eval[string](p, `document.getElementById('drawer').textContent`)
	for _, want := range []string{"msg_" + epoch + "_1", "webhook-signature", "signed with the webhook’s secret", `"type": "order.created"`, `"seq": 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("the drawer does not show %q:\n%s", want, text)
		}
	}
	if h.Secret == "" {
		t.Fatal("the webhook was created without a secret")
	}
	if strings.Contains(text, h.Secret) || strings.Contains(text, "whsec_") {
		t.Error("the drawer shows the secret")
	}
	p.run(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.settle()
	path := p.viewShot("dashboard-deliveries")
	t.Logf("screenshot %s", path)
	if *updateDocs {
		copyFile(t, path, filepath.Join("..", "docs", "dashboard-deliveries.png"))
	}
	// At phone width, in dark mode, the drawer fits the screen.
	p.run(chromedp.EmulateViewport(phoneW, phoneH))
	p.darkMode(true)
	p.settle()
	if w := eval[int64](p, `document.getElementById('drawer').scrollWidth`); w > phoneW {
		t.Errorf("the drawer is %dpx wide on a %dpx phone", w, phoneW)
	}
	t.Logf("screenshot %s", p.viewShot("dashboard-deliveries-phone-dark"))
	p.run(chromedp.EmulateViewport(desktopW, desktopH))
	p.darkMode(false)
	p.run(chromedp.Click(chromedp.ID("drawer-close")))
	p.waitJS("the drawer to close", `!document.getElementById('drawer').open`)

	// Retry seq 2 from its drawer once the receiver is fixed: a third
	// attempt, manual, succeeds, and the log shows it.
	setSelect("")
	p.waitJS("the whole log", card+`.querySelector('tbody tr')?.dataset.seq === '4'`)
	p.run(chromedp.Click(btn("older")))
	// Find and click in one script: the log's refresh may re-render the
	// table between a separate find and click.
	p.waitJS("seq 2's row, clicked", fmt.Sprintf(`(b => b ? (b.click(), true) : false)(document.querySelector('li[data-id=%q] tr[data-seq="2"] button.link'))`, h.ID))
	p.waitJS("seq 2's drawer", `document.getElementById('drawer').dataset.ready === 'true' && document.getElementById('drawer').dataset.status === 'failed'`)
	if n := eval[int](p, `document.querySelectorAll('#drawer .attempt').length`); n != 2 {
		t.Fatalf("seq 2 shows %d attempts, want 2", n)
	}
	fixed.Store(true)
	p.run(chromedp.Click(chromedp.ID("drawer-retry")))
	p.waitJS("the manual attempt", `document.getElementById('drawer').dataset.status === 'succeeded' && document.querySelectorAll('#drawer .attempt').length === 3`)
	last := eval[string](p, `(a => a.dataset.trigger + ' ' + a.dataset.status)([...document.querySelectorAll('#drawer .attempt')].at(-1))`)
	if last != "manual 200" {
		t.Errorf("last attempt = %q, want manual 200", last)
	}
	p.waitJS("the log to follow", card+`.querySelector('tr[data-seq="2"]')?.dataset.status === 'succeeded'`)
	p.run(chromedp.KeyEvent(kb.Escape))
	p.waitJS("the drawer to close", `!document.getElementById('drawer').open`)
	if v := eval[[]string](p, `window.__csp`); len(v) != 0 {
		t.Fatalf("the drawer violates the CSP: %q", v)
	}
}

// testRetryClearsRetrying: Retry on a retrying delivery takes it out of the
// card's retrying count at once, not when its hour-long backoff ends.
func testRetryClearsRetrying(t *testing.T, b *browser) {
	g := startGateway(t, noAutoRetry)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	h := g.createHook(t, map[string]any{"url": rc.URL})
	g.waitDelivery(t, h.ID, g.publish(t, "order.created"), "retrying")
	p := b.open(t, g.URL+"/", desktopW, desktopH)
	card := fmt.Sprintf(`document.querySelector('#wh-list li[data-id=%q]')`, h.ID)
	p.waitJS("1 retrying", card+`?.querySelector('.counts').textContent.includes('1 retrying')`)
	p.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-id=%q] button[aria-controls]`, h.ID))))
	p.waitJS("the row", card+`.querySelector('tr[data-seq="1"] td:last-child button') !== null`)
	p.waitJS("seq 1's Retry, clicked", fmt.Sprintf(`(b => b ? (b.click(), true) : false)(document.querySelector('li[data-id=%q] tr[data-seq="1"] td:last-child button'))`, h.ID))
	p.waitJS("0 retrying", card+`.querySelector('.counts').textContent.includes('0 retrying') && `+card+`.querySelector('.counts').textContent.includes('1 succeeded')`)
}

// countSockets makes every document the tab loads count the WebSockets it
// opens in window.__ws.
func (p *page) countSockets() {
	p.t.Helper()
	p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__ws = 0; { const W = window.WebSocket; window.WebSocket = class extends W { constructor(...a) { super(...a); window.__ws++; } }; }`,
		})
		return err
	}))
}

// viewShot saves the viewport (not the full page: a modal is as tall as
// the viewport) under testout/ and returns its path.
func (p *page) viewShot(name string) string {
	p.t.Helper()
	buf := shoot(p, chromedp.CaptureScreenshot())
	dir := filepath.Join("..", "testout")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// evalAwait evaluates expr, a promise, and returns what it resolves to.
func evalAwait[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// testInvalidFilter: an invalid pattern shows the server's reason next to
// the filter, the badge says the stream stopped, and no WebSocket is
// opened for it, then or later; a valid filter brings the stream back.
func testInvalidFilter(t *testing.T, b *browser) {
	g := startGateway(t)
	// The 400s are the validation answers this test asks for.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 400")
	p.countSockets()
	p.run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("stream")))
	waitLive(p)
	before := eval[int](p, `window.__ws`)
	p.setValue("filter", "order..x, billing.>")
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	p.waitJS("the filter error", `document.getElementById('filter-err').textContent.includes('empty segment')`)
	p.waitJS("the stopped badge", `document.getElementById('stream-status').textContent === 'stopped · invalid filter'`)
	if got := eval[string](p, `document.getElementById('filter').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("filter aria-invalid = %q", got)
	}
	// Absence takes a wait: watch the badge and the socket count for
	// longer than the first three reconnect delays (0.5 s, 1 s, 2 s) of the
	// old loop. The watch runs in the page, so it sees every change.
	watch := evalAwait[string](p, `new Promise(r => {
		const el = document.getElementById('stream-status');
		const seen = [];
		const mo = new MutationObserver(() => seen.push(el.textContent));
		mo.observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
		setTimeout(() => { mo.disconnect(); r(JSON.stringify({ seen, ws: window.__ws, text: el.textContent })); }, 4000);
	})`)
	var w struct {
		Seen []string
		WS   int
		Text string
	}
	if err := json.Unmarshal([]byte(watch), &w); err != nil {
		t.Fatal(err)
	}
	if w.WS != before || len(w.Seen) != 0 || w.Text != "stopped · invalid filter" {
		t.Fatalf("after the invalid filter: %d sockets opened (want 0), badge changes %q, badge %q", w.WS-before, w.Seen, w.Text)
	}

	// A valid filter clears the error and goes live again.
	p.setValue("filter", "order.*")
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	waitLive(p)
	if got := p.text("filter-err"); got != "" {
		t.Errorf("stale filter error %q", got)
	}
}

// testBufferedMatches: applying a filter shows the buffered events that
// match (the last 100, or from a seq); Older pages back, Jump finds a seq
// not yet loaded, Search narrows the loaded rows; the chart counts only
// live arrivals.
func testBufferedMatches(t *testing.T, b *browser) {
	g := startGateway(t)
	// 300 events: seq%3==0 are order.paid (100 of them), the rest other.
	for i := 1; i <= 300; i++ {
		typ := "user.seen"
		if i%3 == 0 {
			typ = "order.paid"
		}
		resp, body := g.postJSON(t, "/v1/events", map[string]any{"type": typ, "subject": fmt.Sprintf("order/%d", i), "data": map[string]any{"n": i}})
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	// The 404 is the answer about seq 9999, which Jump asks for.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 404")
	waitLive(p)
	// The page opens on the last 100 buffered events, none drawn as live.
	p.waitJS("the last 100", `document.querySelectorAll('#events li.event').length === 100`)
	if got := seqsShown(p); got[0] != 300 || got[99] != 201 {
		t.Fatalf("rows %d..%d, want 300..201", got[0], got[99])
	}
	p.setValue("filter", "order.*")
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	waitLive(p)
	p.waitJS("the last 100 matches", `document.querySelectorAll('#events li.event').length === 100`)
	got := seqsShown(p)
	if got[0] != 300 || got[99] != 3 {
		t.Fatalf("matches %d..%d, want 300..3", got[0], got[99])
	}
	for _, s := range got {
		if s%3 != 0 {
			t.Fatalf("seq %d shown for order.*", s)
		}
	}
	if n := eval[string](p, `document.getElementById('rate-chart').dataset.counted ?? '0'`); n != "0" {
		t.Errorf("the chart drew %s buffered events as arrivals", n)
	}
	// Live arrivals are drawn.
	postEvent(t, g, "order.paid", 1)
	postEvent(t, g, "order.paid", 2)
	p.waitJS("two live arrivals drawn", `document.getElementById('rate-chart').dataset.counted === '2'`)

	// From seq: a replay from there, still not drawn as arrivals.
	p.setValue("from-seq", "250")
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	waitLive(p)
	p.waitJS("the replay from 250", `document.querySelector('#events li.event:last-of-type')?.dataset.seq === '252' && document.querySelector('#events li.event')?.dataset.seq === '302'`)
	if n := len(seqsShown(p)); n != 19 { // 252..300 step 3 (17), 301, 302
		t.Errorf("%d rows from seq 250, want 19", n)
	}
	if n := eval[string](p, `document.getElementById('rate-chart').dataset.counted`); n != "2" {
		t.Errorf("the chart counted %s, want the 2 live arrivals only", n)
	}

	// Older pages back through the matches before the bottom row.
	p.run(chromedp.Click(chromedp.ID("older")))
	p.waitJS("older rows", `document.querySelector('#events li.event:last-of-type')?.dataset.seq === '3'`)
	if n := len(seqsShown(p)); n != 19+83 { // 3..249 step 3
		t.Errorf("%d rows after Older, want %d", n, 19+83)
	}
	p.run(chromedp.Click(chromedp.ID("older")))
	p.waitJS("the end", `document.getElementById('older-note').textContent === 'No older buffered events match.'`)

	// Jump: to a loaded row, to one the filter excludes, to one not stored.
	jump := func(seq string) {
		p.setValue("jump-seq", seq)
		p.run(chromedp.Click(chromedp.CSS(`#jump-form button`)))
	}
	jump("42")
	p.waitJS("seq 42 open", `document.querySelector('#events li[data-seq="42"]').classList.contains('flash') && document.querySelector('#events li[data-seq="42"] details').open`)
	jump("43")
	p.waitJS("why 43 is missing", `document.getElementById('history-msg').textContent.includes('does not match the filter')`)
	jump("9999")
	p.waitJS("why 9999 is missing", `document.getElementById('history-msg').textContent.includes('not buffered')`)

	// Jump to a seq older than the rows: the list loads down to it.
	p.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('from-seq').value = ''`))
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	waitLive(p)
	p.waitJS("the last 100 matches again", `document.querySelectorAll('#events li.event').length === 100`)
	jump("3")
	p.waitJS("seq 3 loaded and open", `document.querySelector('#events li[data-seq="3"] details')?.open === true`)
	if n := len(seqsShown(p)); n != 102 {
		t.Errorf("%d rows after jumping to seq 3, want all 102 matches", n)
	}

	// Search the loaded events by subject, type and id.
	p.setValue("search", "order/42")
	p.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('search').dispatchEvent(new Event('input'))`))
	p.waitJS("one match", `[...document.querySelectorAll('#events li.event')].filter(li => !li.hidden).length === 1`)
	if got := eval[string](p, `[...document.querySelectorAll('#events li.event')].find(li => !li.hidden).dataset.seq`); got != "42" {
		t.Errorf("search order/42 shows seq %s", got)
	}
	id := eval[string](p, `document.querySelector('#events li[data-seq="99"] code').textContent`)
	p.setValue("search", id)
	p.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('search').dispatchEvent(new Event('input'))`))
	p.waitJS("the id's row", `(s => s.length === 1 && s[0].dataset.seq === '99')([...document.querySelectorAll('#events li.event')].filter(li => !li.hidden))`)
	p.setValue("search", "ORDER.PAID")
	p.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('search').dispatchEvent(new Event('input'))`))
	p.waitJS("every row", `[...document.querySelectorAll('#events li.event')].every(li => !li.hidden)`)
	if got := p.text("search-result"); !strings.HasPrefix(got, "102 of 102") {
		t.Errorf("search result %q", got)
	}
	p.setValue("search", "order/1")
	p.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('search').dispatchEvent(new Event('input'))`))
	p.waitJS("the search", `document.getElementById('search-result').textContent.startsWith('`+fmt.Sprint(countMatches())+` of 102')`)
	p.run(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); window.scrollTo(0, 0)`))
	p.settle()
	path := p.viewShot("dashboard-stream")
	t.Logf("screenshot %s", path)
	if *updateDocs {
		copyFile(t, path, filepath.Join("..", "docs", "dashboard-stream.png"))
	}
}

// countMatches counts the order.paid seqs with a subject (multiples of 3
// to 300) whose subject order/<seq> contains "order/1".
func countMatches() int {
	n := 0
	for s := 3; s <= 300; s += 3 {
		if strings.Contains(fmt.Sprintf("order/%d", s), "order/1") {
			n++
		}
	}
	return n
}

// testSendBothErrors: invalid JSON and an invalid type at once show both
// errors, the page's JSON error and the server's type error, and store
// nothing.
func testSendBothErrors(t *testing.T, b *browser) {
	g := startGateway(t)
	// The 422 is the server's answer about the other fields.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 422")
	p.waitJS("the buffer panel", `document.getElementById('buffer').dataset.ready === 'true'`)
	p.setValue("send-type", "no spaces allowed")
	p.setValue("send-subject", "order/1")
	p.setValue("send-data", `{"order_id": 981,}`)
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("both errors", `document.getElementById('send-data-err').textContent.startsWith('Not valid JSON') && document.getElementById('send-type-err').textContent.includes('segments')`)
	if focused := eval[string](p, `document.activeElement.id`); focused != "send-type" {
		t.Errorf("focus on %q, want the first invalid field, send-type", focused)
	}
	if got := p.text("send-form-err"); got != "" {
		t.Errorf("form error %q", got)
	}
	_, body := g.do(t, http.MethodGet, "/v1/events?limit=1", "", nil)
	if n := decode[struct{ Newest int }](t, body).Newest; n != 0 {
		t.Fatalf("the check stored %d events", n)
	}
	// Fixing the type leaves only the JSON error.
	p.setValue("send-type", "order.created")
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("only the JSON error", `document.getElementById('send-type-err').textContent === '' && document.getElementById('send-data-err').textContent.startsWith('Not valid JSON')`)
	if focused := eval[string](p, `document.activeElement.id`); focused != "send-data" {
		t.Errorf("focus on %q, want send-data", focused)
	}
}
