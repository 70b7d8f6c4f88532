package api_test

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// recordViolations makes every document the tab loads from now on record
// its securitypolicyviolation events in window.__csp, from before its own
// scripts run.
func (p *page) recordViolations() {
	p.t.Helper()
	p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
		})
		return err
	}))
}

// The dashboard runs under its Content-Security-Policy without a single
// violation: loading, streaming over the WebSocket, rendering events and
// expanding one. The page's console (checked by open) stays clean too.
func TestDashboardPassesItsCSP(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t)
	p := b.open(t, g.URL+"/", 1280, 800)
	p.recordViolations()
	p.run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("stream")))
	p.waitJS("the stream to be live", `document.getElementById('stream-status').dataset.state === 'live'`)
	g.publishN(t, "csp.check", 3, `{"nested":{"a":[1,2,3]}}`)
	p.waitJS("three rows", `document.querySelectorAll('#events li.event').length === 3`)
	p.run(chromedp.Click(chromedp.CSS(`#events li.event summary`)))
	p.waitJS("the buffer panel", `document.getElementById('buffer').dataset.ready === 'true'`)
	p.settle()
	if v := eval[[]string](p, `window.__csp`); len(v) != 0 {
		t.Fatalf("the dashboard violates its CSP: %q", v)
	}

	// The policy is in force: an inline script is refused (and reported).
	q := b.open(t, g.URL+"/", 1280, 800, "Content Security Policy")
	q.recordViolations()
	q.run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("stream")))
	ran := eval[bool](q, `(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = true'; document.head.append(s); return window.__inline === true; })()`)
	q.waitJS("the violation report", `window.__csp.length > 0`)
	if ran {
		t.Fatal("an inline script ran: the CSP is not in force")
	}
}
