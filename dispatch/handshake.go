package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventgate/eventgate/store"
)

// reasonHandshake starts the disabled_reason of a webhook whose endpoint
// never accepted the validation handshake.
const reasonHandshake = "handshake failed: "

// Handshake outcomes, the label values of eventgate_webhook_handshakes_total.
const (
	handshakeAccepted = "accepted" // 2xx with a matching WebHook-Allowed-Origin
	handshakeRefused  = "refused"  // an answer, but not an acceptance
	handshakeError    = "error"    // timeout, connection error
)

// handshakeState is where an endpoint's validation handshake stands.
// Guarded by the endpoint's mutex.
type handshakeState struct {
	busy        bool      // a handshake request is in flight (kept across reset: at most one at a time)
	gen         int       // bumped by reset: results of older requests are ignored
	failures    int       // failed handshakes since reset
	next        time.Time // when the next may start; zero: at once
	allowedRate float64   // WebHook-Allowed-Rate, per second; 0: none given
}

// reset starts over (a new URL, re-enabled). A request still in flight
// stays counted in busy until it reports, so resets never stack up
// concurrent handshakes; its result is ignored as stale.
func (h *handshakeState) reset() {
	h.gen++
	h.failures, h.next, h.allowedRate = 0, time.Time{}, 0
}

// handshakeResult is what a handshake request reports.
type handshakeResult struct {
	gen           int
	url           string
	allowedOrigin string
	allowedRate   string
	allow         string
	hasAllow      bool
}

// handshakeLocked starts the handshake when one is due and none is in
// flight; it returns when the next is due (zero: nothing to wait for).
func (e *endpoint) handshakeLocked(now time.Time, draining bool) time.Time {
	if !e.hook.Enabled || e.deleted || e.hs.busy || draining {
		return time.Time{}
	}
	if now.Before(e.hs.next) {
		return e.hs.next
	}
	e.hs.busy = true
	url, headers, rate, gen := e.hook.URL, e.headers, e.hook.RateLimit, e.hs.gen
	e.workerWG.Go(func() { e.report(e.d.handshake(e.ctx, url, headers, rate, gen)) })
	return time.Time{}
}

// handshake sends the CloudEvents webhook validation request: OPTIONS
// with WebHook-Request-Origin (and WebHook-Request-Rate when the webhook
// is rate limited), on the dispatcher's client and timeout.
func (d *Dispatcher) handshake(ctx context.Context, url string, headers map[string]string, rate float64, gen int) result {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	hr := &handshakeResult{gen: gen, url: url}
	r := result{hs: hr, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, url, nil)
	if err != nil {
		r.err = err
		return r
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header["User-Agent"] = []string{"eventgate"}
	req.Header["Webhook-Request-Origin"] = []string{d.cfg.Origin}
	if rate > 0 {
		req.Header["Webhook-Request-Rate"] = []string{strconv.Itoa(int(math.Ceil(rate * 60)))}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		r.err, r.dur = err, time.Since(r.start)
		return r
	}
	r.status = resp.StatusCode
	hr.allowedOrigin = resp.Header.Get("WebHook-Allowed-Origin")
	hr.allowedRate = resp.Header.Get("WebHook-Allowed-Rate")
	hr.allow, hr.hasAllow = resp.Header.Get("Allow"), len(resp.Header.Values("Allow")) > 0
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.body, _ = io.ReadAll(io.LimitReader(resp.Body, respKeep))
	}
	_, _ = io.CopyN(io.Discard, resp.Body, respDrain)
	_ = resp.Body.Close()
	r.dur = time.Since(r.start)
	return r
}

// judgeHandshake decides whether the endpoint accepted origin; for a
// refusal it says why. allowedRate is WebHook-Allowed-Rate per second (0
// when absent or "*").
func judgeHandshake(r result, origin string, timeout time.Duration) (ok bool, outcome, msg string, allowedRate float64) {
	if r.err != nil {
		_, msg = classify(r, timeout)
		return false, handshakeError, msg, 0
	}
	hr := r.hs
	switch {
	case r.status < 200 || r.status > 299:
		_, msg = classify(r, timeout)
		return false, handshakeRefused, msg, 0
	case hr.allowedOrigin == "":
		return false, handshakeRefused, "WebHook-Allowed-Origin missing", 0
	case hr.allowedOrigin != "*" && !strings.EqualFold(hr.allowedOrigin, origin):
		return false, handshakeRefused, fmt.Sprintf("WebHook-Allowed-Origin %q does not match %q", hr.allowedOrigin, origin), 0
	case hr.hasAllow && !allowsPost(hr.allow):
		return false, handshakeRefused, fmt.Sprintf("Allow %q does not include POST", hr.allow), 0
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(hr.allowedRate), 10, 32); err == nil && n > 0 {
		allowedRate = float64(n) / 60
	}
	return true, handshakeAccepted, "", allowedRate
}

func allowsPost(allow string) bool {
	for m := range strings.SplitSeq(allow, ",") {
		if strings.EqualFold(strings.TrimSpace(m), http.MethodPost) {
			return true
		}
	}
	return false
}

// finishHandshake books a handshake's outcome: accepted makes the webhook
// active; a failure waits on the retry schedule, and when the schedule is
// spent the webhook is disabled.
func (e *endpoint) finishHandshake(r result) {
	d := e.d
	now := time.Now()
	ok, outcome, msg, allowed := judgeHandshake(r, d.cfg.Origin, d.cfg.Timeout)
	if errors.Is(r.err, context.Canceled) {
		outcome = outcomeCanceled
	}
	e.mu.Lock()
	stale := r.hs.gen != e.hs.gen || !e.hook.AwaitingHandshake || e.hook.URL != r.hs.url
	e.hs.busy = false // the one request in flight has reported
	if stale || outcome == outcomeCanceled {
		e.mu.Unlock()
		e.poke() // a reset may be waiting to start its own handshake
		return
	}
	d.metrics.handshakes.WithLabelValues(outcome).Inc()
	disable := ""
	if ok {
		e.hook.AwaitingHandshake = false
		e.hs.allowedRate = allowed
		e.bucket.set(e.hook.RateLimit, allowed, now)
	} else if e.hs.failures < len(d.cfg.Schedule) {
		e.hs.next = now.Add(Jitter(d.cfg.Schedule[e.hs.failures], d.cfg.Rand()))
		e.hs.failures++
	} else {
		disable = reasonHandshake + msg
	}
	url := e.hook.URL
	disabled := disable != "" && e.disableLocked(disable, now)
	e.mu.Unlock()
	switch {
	case ok:
		d.cfg.Logger.Info("webhook handshake accepted", "webhook", e.id, "url", redactURL(url))
		_, err := d.hooks.Update(e.ctx, e.id, func(w *store.Webhook) error {
			if w.URL != url || !w.AwaitingHandshake {
				return errSkip
			}
			w.AwaitingHandshake = false
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) && e.ctx.Err() == nil {
			d.cfg.Logger.Error("cannot store the accepted handshake", "webhook", e.id, "err", err)
		}
	case disabled:
		e.persistDisabled(disable, now)
	default:
		d.cfg.Logger.Warn("webhook handshake failed", "webhook", e.id, "reason", msg)
	}
}

// redactURL returns a webhook URL fit for a log line: the password of its
// userinfo replaced (url.URL.Redacted), or nothing of it if it does not
// parse. Every log line that names a webhook's URL goes through it.
func redactURL(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
