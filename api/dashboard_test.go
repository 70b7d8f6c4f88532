package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/eventgate/eventgate/gateway/signature"
)

// The dashboard's end-to-end tests: real headless Chromium against a real
// gateway on 127.0.0.1. One browser serves every subtest.

const (
	desktopW, desktopH = 1280, 800
	phoneW, phoneH     = 390, 844
)

func TestDashboard(t *testing.T) {
	b := newBrowser(t)
	t.Run("SendForm", func(t *testing.T) { testSendForm(t, b) })
	t.Run("APIKey", func(t *testing.T) { testAPIKey(t, b) })
	t.Run("EventsAppear", func(t *testing.T) { testEventsAppear(t, b) })
	t.Run("DeepDataRendered", func(t *testing.T) { testDeepData(t, b) })
	t.Run("PauseResume", func(t *testing.T) { testPauseResume(t, b) })
	t.Run("SlowConsumer", func(t *testing.T) { testSlowConsumer(t, b) })
	t.Run("Webhook", func(t *testing.T) { testWebhook(t, b) })
	t.Run("Screenshots", func(t *testing.T) { testScreenshots(t, b) })
}

func testSendForm(t *testing.T, b *browser) {
	g := startGateway(t)
	// The 422s are the answers this test asks for.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 422")
	p.waitJS("the buffer panel", `document.getElementById('buffer').dataset.ready === 'true'`)

	// A good event, submitted with the keyboard.
	p.setValue("send-type", "order.created")
	p.setValue("send-data", `{"order_id": 981}`)
	p.run(chromedp.Focus(chromedp.ID("send-type")), chromedp.KeyEvent(kb.Enter))
	p.waitJS("the stored seq", `document.getElementById('send-result').textContent === 'Stored as seq 1'`)
	resp, body := g.do(t, http.MethodGet, "/v1/events/1", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if e := decode[storedEvent](t, body); e.Type != "order.created" || string(e.Data) != `{"order_id":981}` {
		t.Fatalf("stored %+v", e)
	}

	// Bad JSON: caught in the page, shown at the data field, nothing sent.
	p.setValue("send-data", `{"order_id": 981,}`)
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("the JSON error", `document.getElementById('send-data-err').textContent.startsWith('Not valid JSON')`)
	if invalid := eval[string](p, `document.getElementById('send-data').getAttribute('aria-invalid')`); invalid != "true" {
		t.Errorf("data field aria-invalid = %q", invalid)
	}
	if got := p.text("send-type-err"); got != "" {
		t.Errorf("type error %q for a JSON mistake", got)
	}

	// A bad type: the server's 422 errors[].field /type lands at the type field.
	p.setValue("send-type", "no spaces allowed")
	p.setValue("send-data", `{}`)
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("the type error", `document.getElementById('send-type-err').textContent !== ''`)
	if got := p.text("send-type-err"); !strings.Contains(got, "segments") {
		t.Errorf("type error = %q, want the server's message", got)
	}
	if got := p.text("send-data-err"); got != "" {
		t.Errorf("stale data error %q", got)
	}
	if focused := eval[string](p, `document.activeElement.id`); focused != "send-type" {
		t.Errorf("focus on %q after a type error, want send-type", focused)
	}
	// A reserved type is refused at /type too.
	p.setValue("send-type", "eventgate.webhook.disabled")
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("the reserved-type error", `document.getElementById('send-type-err').textContent !== '' && document.getElementById('send-result').textContent === ''`)

	// The buffer panel follows the log.
	for i := range 4 {
		resp, body := g.postJSON(t, "/v1/events", fmt.Sprintf(`{"type":"order.created","data":%d}`, i))
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	p.waitJS("the buffer to show 5 events", `document.getElementById('buf-size').textContent === '5' && document.getElementById('buf-newest').textContent === '5'`)
	if got := p.text("buf-oldest"); got != "1" {
		t.Errorf("oldest = %q, want 1", got)
	}
}

func testAPIKey(t *testing.T, b *browser) {
	g := startGateway(t, func(o *options) { o.API.Keys = []string{"k-secret"} })
	// The 401s are the answers that make the page ask for a key.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 401")
	p.waitJS("the key dialog", `document.getElementById('key-dialog').open`)
	p.setValue("key-input", "wrong")
	p.run(chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	p.waitJS("the key to be refused", `document.getElementById('key-dialog').open && document.getElementById('key-err').textContent.includes('not accepted')`)
	p.setValue("key-input", "k-secret")
	p.run(chromedp.Click(chromedp.CSS("#key-form button[type=submit]")))
	p.waitJS("the buffer panel", `!document.getElementById('key-dialog').open && document.getElementById('buffer').dataset.ready === 'true'`)
	if stored := eval[string](p, `sessionStorage.getItem('eventgate.apiKey') + '|' + (localStorage.length === 0)`); stored != "k-secret|true" {
		t.Errorf("key storage = %q, want it in sessionStorage only", stored)
	}
	// The form's requests carry the key.
	p.setValue("send-type", "order.created")
	p.run(chromedp.Click(chromedp.CSS("#send-form button[type=submit]")))
	p.waitJS("the stored seq", `document.getElementById('send-result').textContent === 'Stored as seq 1'`)

	// The stream carries the key as access_token.
	waitLive(p)
	resp, body := g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(`{"type":"order.paid","data":2}`), "Authorization", "Bearer k-secret")
	wantStatus(t, resp, body, http.StatusAccepted)
	p.waitJS("seq 2 in the stream", `document.querySelector('#events li[data-seq="2"]') !== null`)
}

// updateDocs makes TestDashboard/Screenshots copy its light desktop
// screenshot (the whole page) to docs/dashboard.png, the README's picture:
//
//	go test ./api -run TestDashboard/Screenshots -update-docs
var updateDocs = flag.Bool("update-docs", false, "copy the desktop screenshot to docs/dashboard.png")

// testScreenshots fills a gateway with a little of everything and saves the
// page at desktop and phone widths, light and dark, under testout/.
func testScreenshots(t *testing.T, b *browser) {
	g := startGateway(t, noAutoRetry)
	ok := newSink(t)
	flaky := newSink(t)
	flaky.fail.Store(http.StatusServiceUnavailable)
	for _, wh := range []map[string]any{
		{"url": ok.URL + "/hooks/orders", "types": []string{"order.>"}, "description": "Order service"},
		{"url": flaky.URL + "/hooks/billing", "types": []string{"billing.*"}, "description": "Billing (flaky)"},
	} {
		resp, body := g.postJSON(t, "/v1/webhooks", wh)
		wantStatus(t, resp, body, http.StatusCreated)
	}
	sample := func(i int) {
		types := []string{"order.created", "order.paid", "billing.invoice-paid", "order.shipped", "user.signed-up"}
		typ := types[i%len(types)]
		ev := map[string]any{"type": typ, "source": "/shop", "subject": fmt.Sprintf("order/%d", 980+i),
			"data": map[string]any{"order_id": 980 + i, "total": fmt.Sprintf("%d.90", 19+i), "items": []string{"book", "pen"}, "gift": i%2 == 0}}
		resp, body := g.postJSON(t, "/v1/events", ev)
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	for i := range 6 {
		sample(i)
	}
	p := b.open(t, g.URL+"/", desktopW, desktopH)
	waitLive(p)
	for i := 6; i < 12; i++ {
		sample(i)
	}
	p.waitJS("the events", `document.querySelectorAll('#events li.event').length >= 12`)
	p.waitJS("the buffer", `document.getElementById('buf-newest').textContent === '12' && document.getElementById('buf-rate').textContent !== '–'`)
	p.run(chromedp.Click(chromedp.CSS(`#events li.event:nth-child(2) summary`)))
	p.run(chromedp.Click(chromedp.CSS(`#wh-list li.wh:first-child .wh-actions button[aria-controls]`)))
	p.waitJS("the delivery log", `document.querySelectorAll('#wh-list tr[data-status]').length > 0`)
	p.waitJS("the retrying delivery", `document.querySelector('#wh-list li.wh:nth-child(2) .counts').textContent.includes('1 retrying')`)
	p.run(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	for _, v := range []struct {
		name string
		w, h int64
		dark bool
	}{
		{"desktop-light", desktopW, desktopH, false},
		{"desktop-dark", desktopW, desktopH, true},
		{"phone-light", phoneW, phoneH, false},
		{"phone-dark", phoneW, phoneH, true},
	} {
		p.run(chromedp.EmulateViewport(v.w, v.h))
		p.darkMode(v.dark)
		p.run(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		p.settle()
		if w := eval[int64](p, `document.documentElement.scrollWidth`); w > v.w {
			t.Errorf("%s: the page is %dpx wide, wider than the %dpx viewport", v.name, w, v.w)
		}
		path := p.screenshot(v.name)
		t.Logf("screenshot %s", path)
		if v.name == "desktop-light" && *updateDocs {
			copyFile(t, path, filepath.Join("..", "docs", "dashboard.png"))
		}
	}
}

// seqsShown lists the seqs of the event rows, top (newest) first.
func seqsShown(p *page) []int {
	p.t.Helper()
	return eval[[]int](p, `[...document.querySelectorAll('#events li.event')].map(li => Number(li.dataset.seq))`)
}

func postEvent(t *testing.T, g *testGateway, typ string, data any) uint64 {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := g.postJSON(t, "/v1/events", string(b))
	wantStatus(t, resp, body, http.StatusAccepted)
	return decode[appended](t, body).Seq
}

func waitLive(p *page) {
	p.t.Helper()
	p.waitJS("the stream to be live", `document.getElementById('stream-status').dataset.state === 'live'`)
}

func testEventsAppear(t *testing.T, b *browser) {
	g := startGateway(t)
	p := b.open(t, g.URL+"/", desktopW, desktopH)
	waitLive(p)
	postEvent(t, g, "order.created", map[string]any{"order_id": 981, "note": "first"})
	postEvent(t, g, "billing.invoice-paid", 12.5)
	postEvent(t, g, "order.paid", nil)
	p.waitJS("seqs 1-3", `document.querySelectorAll('#events li.event').length === 3`)
	if got := seqsShown(p); fmt.Sprint(got) != "[3 2 1]" {
		t.Fatalf("rows %v, want [3 2 1]", got)
	}
	// A row opens to its pretty-printed data.
	p.run(chromedp.Click(chromedp.CSS(`#events li[data-seq="1"] summary`)))
	p.waitJS("the open row", `document.querySelector('#events li[data-seq="1"] details').open`)
	if got := eval[string](p, `document.querySelector('#events li[data-seq="1"] pre.json').textContent`); !strings.Contains(got, `"note": "first"`) {
		t.Errorf("data shown as %q", got)
	}
	if got := p.text("stream-count"); got != "3" {
		t.Errorf("received = %q, want 3", got)
	}

	// A filter starts a new stream with only the matching types, after
	// the buffered events that match.
	p.setValue("filter", "order.*")
	p.run(chromedp.Click(chromedp.CSS(`#filter-form button[type=submit]`)))
	waitLive(p)
	postEvent(t, g, "billing.invoice-paid", 1)
	postEvent(t, g, "order.shipped", 2)
	p.waitJS("seq 5", `document.querySelector('#events li[data-seq="5"]') !== null`)
	if got := seqsShown(p); fmt.Sprint(got) != "[5 3 1]" {
		t.Fatalf("rows after filtering %v, want [5 3 1]", got)
	}
}

// testDeepData: an event whose data is nested 9,000 deep (the gateway
// takes up to 10,000) between two plain ones, alone and in one batch,
// gets its row like every other: rendering one event cannot throw away
// its batch, and the stream's last seq never passes a row not shown.
func testDeepData(t *testing.T, b *browser) {
	g := startGateway(t)
	p := b.open(t, g.URL+"/", desktopW, desktopH)
	waitLive(p)
	const depth = 9000
	deep := `{"type":"deep.data","data":` + strings.Repeat(`{"a":[`, depth/2) + `1` + strings.Repeat(`]}`, depth/2) + `}`
	postEvent(t, g, "plain.before", 1)
	resp, body := g.postJSON(t, "/v1/events", deep)
	wantStatus(t, resp, body, http.StatusAccepted)
	postEvent(t, g, "plain.after", 2)
	// The same three as one batch: one stream message.
	resp, body = g.postJSON(t, "/v1/events", `[{"type":"plain.before","data":3},`+deep+`,{"type":"plain.after","data":4}]`)
	wantStatus(t, resp, body, http.StatusAccepted)
	p.waitJS("six rows", `document.querySelectorAll('#events li.event').length === 6`)
	if got := seqsShown(p); fmt.Sprint(got) != "[6 5 4 3 2 1]" {
		t.Fatalf("rows %v, want [6 5 4 3 2 1]", got)
	}
	for _, seq := range []string{"2", "5"} {
		sel := `#events li[data-seq="` + seq + `"]`
		if got := eval[string](p, `document.querySelector('`+sel+` .type').textContent`); got != "deep.data" {
			t.Errorf("seq %s: type shown as %q", seq, got)
		}
		p.run(chromedp.Click(chromedp.CSS(sel + ` summary`)))
		p.waitJS("the open row", `document.querySelector('`+sel+` details').open`)
		// What can be shown is: the first levels, then a marker.
		if got := eval[string](p, `document.querySelector('`+sel+` pre.json').textContent`); !strings.Contains(got, `"a": [`) || len(got) > 200_000 {
			t.Errorf("seq %s: data shown as %d characters: %.300q", seq, len(got), got)
		}
	}
	// The stream goes on.
	postEvent(t, g, "plain.later", 7)
	p.waitJS("seq 7", `document.querySelector('#events li[data-seq="7"]') !== null`)

	// A stream line the browser cannot parse but that starts with its seq
	// is handed on as raw text (its row shows that), never dropped while
	// the seq moves past it.
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('/stream.js').then((m) => {
		const seen = [];
		const s = new m.LiveStream({ onEvents: (ev) => seen.push(...ev), onNotice() {}, onState() {} });
		s.lastSeq = 0;
		s.take('{"seq":1,"type":"a"}\n{"seq":2,"data":[}\n{"seq":3,"type":"c"}');
		return JSON.stringify({ seqs: seen.map((e) => e.seq), raw: seen[1].raw, last: s.lastSeq });
	})`, chromedp.EvalAwaitPromise))
	if err != nil || got != `{"seqs":[1,2,3],"raw":"{\"seq\":2,\"data\":[}","last":3}` {
		t.Errorf("unparseable line: %s, %v", got, err)
	}
}

func testPauseResume(t *testing.T, b *browser) {
	g := startGateway(t)
	// hold=5: the page holds at most 5 events while paused, then closes the
	// socket and asks the gateway for the rest with after on resume. Both
	// ways of not losing an event are exercised.
	p := b.open(t, g.URL+"/?hold=5", desktopW, desktopH)
	waitLive(p)
	postEvent(t, g, "tick", 1)
	p.waitJS("seq 1", `document.querySelector('#events li[data-seq="1"]') !== null`)

	p.run(chromedp.Click(chromedp.ID("pause")))
	p.waitJS("paused", `document.getElementById('stream-status').dataset.state === 'paused'`)
	if got := eval[string](p, `document.getElementById('pause').getAttribute('aria-pressed')`); got != "true" {
		t.Errorf("pause button aria-pressed = %q", got)
	}
	for i := range 8 {
		postEvent(t, g, "tick", i)
	}
	p.waitJS("the hold to fill", `document.getElementById('held').textContent.includes('waits in the gateway')`)
	for i := range 12 {
		postEvent(t, g, "tock", i)
	}
	if got := seqsShown(p); fmt.Sprint(got) != "[1]" {
		t.Fatalf("rows while paused %v, want [1]", got)
	}
	p.run(chromedp.Click(chromedp.ID("pause")))
	waitLive(p)
	p.waitJS("all 21 events", `document.querySelectorAll('#events li.event').length >= 21`)
	postEvent(t, g, "tick", "after")
	p.waitJS("seq 22", `document.querySelector('#events li[data-seq="22"]') !== null`)
	got := seqsShown(p)
	if len(got) != 22 {
		t.Fatalf("rows %v, want seqs 22..1 once each", got)
	}
	for i, s := range got {
		if s != 22-i {
			t.Fatalf("rows %v, want seqs 22..1 once each, in order", got)
		}
	}
}

// sink is a webhook endpoint on 127.0.0.1 that records each request and
// answers with the status set in fail (0: 204).
type sink struct {
	*httptest.Server
	got  chan delivered
	fail atomic.Int32
}

type delivered struct {
	header http.Header
	body   []byte
}

func newSink(t *testing.T) *sink {
	t.Helper()
	r := &sink{got: make(chan delivered, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		select {
		case r.got <- delivered{req.Header.Clone(), body}:
		default:
		}
		if code := r.fail.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *sink) next(t *testing.T) delivered {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no delivery")
		return delivered{}
	}
}

// noAutoRetry leaves failed deliveries waiting an hour, so that tests retry
// them by hand and shut down without draining retries.
func noAutoRetry(o *options) { o.Disp.Schedule = []time.Duration{time.Hour} }

func testWebhook(t *testing.T, b *browser) {
	g := startGateway(t, noAutoRetry)
	rcv := newSink(t)
	// The 422 is the answer to the bad URL below.
	p := b.open(t, g.URL+"/", desktopW, desktopH, "status of 422")
	p.waitJS("the webhook list", `!document.getElementById('wh-empty').hidden`)

	// A bad URL is refused, and the server's error shows at the URL field.
	p.setValue("wh-url", "ftp://example.com/x")
	p.run(chromedp.Click(chromedp.CSS(`#wh-form button[type=submit]`)))
	p.waitJS("the URL error", `document.getElementById('wh-url-err').textContent !== ''`)
	if got := eval[string](p, `document.getElementById('wh-url').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("URL field aria-invalid = %q", got)
	}

	// Register in the page.
	p.setValue("wh-url", rcv.URL+"/hook")
	p.setValue("wh-types", "order.>")
	p.setValue("wh-desc", "test receiver")
	p.run(chromedp.Click(chromedp.CSS(`#wh-form button[type=submit]`)))
	p.waitJS("the secret", `!document.getElementById('wh-secret').hidden`)
	secretText := p.text("wh-secret-value")
	secret, err := signature.ParseSecret(secretText)
	if err != nil {
		t.Fatalf("secret shown %q: %v", secretText, err)
	}
	p.run(chromedp.Click(chromedp.ID("wh-secret-copy")))
	p.waitJS("the copy", `document.getElementById('wh-secret-copy').textContent === 'Copied'`)
	id := eval[string](p, `document.querySelector('#wh-list li.wh').dataset.id`)
	card := fmt.Sprintf(`document.querySelector('#wh-list li[data-id=%q]')`, id)
	// The log follows the delivery tail (SSE, read with fetch so that the
	// key can go in a header).
	p.waitJS("the live delivery log", card+`.querySelector('.log-state').textContent === 'live'`)

	// An event posted over HTTP reaches the receiver, signed with the secret
	// the page showed, and shows up in the log.
	postEvent(t, g, "billing.invoice-paid", 1) // not matched
	seq := postEvent(t, g, "order.created", map[string]any{"order_id": 7})
	d := rcv.next(t)
	if err := signature.Verify([]signature.Secret{secret}, d.header, d.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
	if e := decode[storedEvent](t, d.body); e.Seq != seq || e.Type != "order.created" {
		t.Errorf("delivered %+v", e)
	}
	row := func(seq uint64) string { return fmt.Sprintf(`%s.querySelector('tr[data-seq="%d"]')`, card, seq) }
	p.waitJS("the succeeded delivery", row(seq)+`?.dataset.status === 'succeeded'`)
	p.waitJS("the succeeded count", card+`.querySelector('.counts').textContent.includes('1 succeeded')`)

	// A failed attempt shows as retrying with its error; Retry re-sends it.
	rcv.fail.Store(http.StatusInternalServerError)
	seq = postEvent(t, g, "order.paid", nil)
	rcv.next(t)
	p.waitJS("the retrying delivery", row(seq)+`?.dataset.status === 'retrying'`)
	if got := eval[string](p, row(seq)+`.querySelector('td.err').textContent`); !strings.Contains(got, "500") {
		t.Errorf("last error shown as %q", got)
	}
	rcv.fail.Store(0)
	p.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-id=%q] tr[data-seq="%d"] td:last-child button`, id, seq))))
	rcv.next(t)
	p.waitJS("the retried delivery", row(seq)+`?.dataset.status === 'succeeded'`)

	// Disable and enable.
	toggle := chromedp.CSS(fmt.Sprintf(`li[data-id=%q] button.toggle`, id))
	p.run(chromedp.Click(toggle))
	p.waitJS("disabled", card+`.dataset.status === 'disabled'`)
	resp, body := g.do(t, http.MethodGet, "/v1/webhooks/"+id, "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"enabled":false`) {
		t.Errorf("after disabling: %s", body)
	}
	p.run(chromedp.Click(toggle))
	p.waitJS("enabled", card+`.dataset.status === 'active'`)

	// Delete takes two clicks.
	del := chromedp.CSS(fmt.Sprintf(`li[data-id=%q] button.danger`, id))
	p.run(chromedp.Click(del))
	p.waitJS("the confirm step", card+`.querySelector('button.danger').textContent === 'Confirm delete'`)
	p.run(chromedp.Click(del))
	p.waitJS("the card to go", card+` === null`)
	resp, body = g.do(t, http.MethodGet, "/v1/webhooks/"+id, "", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
}

func testSlowConsumer(t *testing.T, b *browser) {
	// One event a message and a stream queue of 5 make a batch of 100
	// events more than this page may lag: the gateway closes it with 1008,
	// and the page resumes with after, losing nothing and showing nothing
	// twice.
	g := startGateway(t, func(o *options) { o.Hub.Queue, o.Hub.MaxBatch = 5, 1 })
	p := b.open(t, g.URL+"/", desktopW, desktopH)
	waitLive(p)
	batch := make([]map[string]any, 100)
	for i := range batch {
		batch[i] = map[string]any{"type": "burst", "data": i}
	}
	for range 3 {
		resp, body := g.postJSON(t, "/v1/events", batch)
		wantStatus(t, resp, body, http.StatusAccepted)
	}
	p.waitJS("300 events", `document.querySelectorAll('#events li.event').length >= 300`)
	got := seqsShown(p)
	if len(got) != 300 {
		t.Fatalf("%d rows, want 300", len(got))
	}
	for i, s := range got {
		if s != 300-i {
			t.Fatalf("row %d is seq %d, want %d", i, s, 300-i)
		}
	}
	if n := eval[int](p, `document.querySelectorAll('#events li.notice-slow').length`); n == 0 {
		t.Error("the gateway never cut the page off as too slow: the test did not test the resume")
	}
}
