package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one eventgate gateway. Create it with New. A Client is
// safe for concurrent use by multiple goroutines, and holds no goroutine
// of its own: every call does its work in the caller's goroutine and
// returns (or, for Replay and Subscribe, ends its iteration) before
// anything it started is left running.
type Client struct {
	base     *url.URL // scheme://host[/prefix], no trailing slash
	hc       *http.Client
	key      string
	retry    RetryPolicy
	timeout  time.Duration
	agent    string
	readSize int64
}

// Option configures a Client in New.
type Option func(*Client)

// WithAPIKey sends key as "Authorization: Bearer <key>" on every call,
// streams included. Without it the client sends no credentials, which is
// what a gateway with no --api-key expects.
func WithAPIKey(key string) Option { return func(c *Client) { c.key = key } }

// WithHTTPClient makes the client send its requests with hc (its
// Transport, TLS settings, proxy and cookie jar). hc.Timeout should be
// zero: bound calls with their ctx and WithRequestTimeout instead (a
// Timeout would also cut live streams). The default is an http.Client on
// http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetry sets the policy for retrying requests that the gateway turned
// away (429, 503) or that failed on the network; see RetryPolicy. The
// default is DefaultRetryPolicy.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithRequestTimeout bounds each HTTP attempt (not streams, and not the
// waits between retries, which RetryPolicy.MaxElapsed bounds); default
// 30 seconds. The caller's ctx still applies on top.
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// RetryPolicy says when a failed request is sent again. A request is
// retried when the gateway answers 429 or 503 (waiting for its
// Retry-After, in seconds or as an HTTP date, or else for a jittered
// exponential backoff from MinDelay to MaxDelay), and, for requests that
// are safe to repeat (reads, and publishes, whose ids make them
// idempotent), when the network fails. Any other 4xx or 5xx answer is
// returned at once as an *Error.
//
// Zero fields take DefaultRetryPolicy's values. A wait that would end
// after MaxElapsed (counted from the first attempt) is not started: the
// last error is returned instead.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, the first included; 1 means never retry
	MaxElapsed  time.Duration // total time budget for the attempts and the waits between them
	MinDelay    time.Duration // first backoff without Retry-After
	MaxDelay    time.Duration // longest backoff without Retry-After
}

// DefaultRetryPolicy is the policy of a Client created without WithRetry.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, MaxElapsed: 30 * time.Second, MinDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}

// New returns a client for the gateway at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix, for a gateway behind a reverse
// proxy, is kept). It fails only when baseURL is not an absolute http or
// https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("eventgate: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("eventgate: base URL %q: want http:// or https:// and a host", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, retry: DefaultRetryPolicy, timeout: 30 * time.Second, agent: "eventgate-go-client", readSize: 64 << 20}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport}
	}
	d := DefaultRetryPolicy
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = d.MaxAttempts
	}
	if c.retry.MaxElapsed <= 0 {
		c.retry.MaxElapsed = d.MaxElapsed
	}
	if c.retry.MinDelay <= 0 {
		c.retry.MinDelay = d.MinDelay
	}
	if c.retry.MaxDelay <= 0 {
		c.retry.MaxDelay = max(d.MaxDelay, c.retry.MinDelay)
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	return c, nil
}

// call describes one API request for do.
type call struct {
	method string
	path   string     // under the base URL, e.g. "/v1/events"
	query  url.Values // may be nil
	body   any        // JSON-encoded when non-nil
	// safe: repeating the request cannot do harm, so network errors are
	// retried too (429 and 503 always are: the gateway did nothing).
	safe bool
}

// do sends cl, retrying per the client's policy, and decodes a 2xx answer's
// JSON into out (when out is non-nil). It returns the final status code.
// Non-2xx answers become *Error.
func (c *Client) do(ctx context.Context, cl call, out any) (int, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return 0, fmt.Errorf("eventgate: encode request: %w", err)
		}
	}
	u := c.url(cl.path, cl.query)
	p := c.retry
	deadline := time.Now().Add(p.MaxElapsed)
	for attempt := 1; ; attempt++ {
		status, wait, err := c.attempt(ctx, cl, u, body, out)
		if err == nil {
			return status, nil
		}
		if ctx.Err() != nil {
			return status, ctx.Err()
		}
		var apiErr *Error
		retryable := errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable)
		if apiErr == nil && cl.safe {
			retryable = true // a network failure of a request safe to repeat
		}
		if !retryable || attempt >= p.MaxAttempts {
			return status, err
		}
		if wait <= 0 {
			wait = backoff(p.MinDelay, p.MaxDelay, attempt)
		}
		if time.Now().Add(wait).After(deadline) {
			return status, err
		}
		if !sleep(ctx, wait) {
			return status, ctx.Err()
		}
	}
}

// attempt sends one request. It returns the status, the server's
// Retry-After (0 when absent) and an error for anything but a 2xx.
func (c *Client) attempt(ctx context.Context, cl call, u string, body []byte, out any) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, rd)
	if err != nil {
		return 0, 0, fmt.Errorf("eventgate: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.setHeaders(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("eventgate: %s %s: %w", cl.method, cl.path, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := readError(resp)
		return resp.StatusCode, e.RetryAfter, e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, 0, fmt.Errorf("eventgate: %s %s: decode answer: %w", cl.method, cl.path, err)
		}
	}
	return resp.StatusCode, 0, nil
}

func (c *Client) setHeaders(h http.Header) {
	h.Set("Accept", "application/json")
	h.Set("User-Agent", c.agent)
	if c.key != "" {
		h.Set("Authorization", "Bearer "+c.key)
	}
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path += path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// backoff is the jittered exponential delay before retry number n (1 is
// the first retry): from half to all of min·2^(n-1), capped at maxd.
func backoff(mind, maxd time.Duration, n int) time.Duration {
	d := mind
	for i := 1; i < n && d < maxd; i++ {
		d *= 2
	}
	d = min(d, maxd)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
