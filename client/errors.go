package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a non-2xx answer from the gateway: its RFC 9457 problem
// details (application/problem+json) and the HTTP status. Get it with
// errors.As:
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnprocessableEntity {
//		for _, f := range apiErr.Errors { log.Printf("%s: %s", f.Field, f.Message) }
//	}
//
// When the body is not a problem, Title is the status text and Detail the
// start of the body.
type Error struct {
	StatusCode int           // the HTTP status code of the answer
	Type       string        // the problem type URI, e.g. https://eventgate.dev/problems/validation-error
	Title      string        // a short summary, fixed per Type
	Detail     string        // what went wrong this time
	Instance   string        // the request path, when the gateway gives it
	Errors     []FieldError  // every invalid field (validation errors only)
	RetryAfter time.Duration // the Retry-After header, 0 when absent
}

// FieldError names one invalid input field: Field is a JSON-pointer-like
// path such as "/type", or "/1/type" for item 1 of a batch.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns "eventgate: <status> <title>: <detail>" and the first field
// errors.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "eventgate: %d %s", e.StatusCode, e.Title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for i, f := range e.Errors {
		if i == 3 {
			fmt.Fprintf(&b, " (and %d more)", len(e.Errors)-i)
			break
		}
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// readError turns a non-2xx answer into an *Error.
func readError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p struct {
		Type     string       `json:"type"`
		Title    string       `json:"title"`
		Detail   string       `json:"detail"`
		Instance string       `json:"instance"`
		Errors   []FieldError `json:"errors"`
	}
	if json.Unmarshal(raw, &p) == nil && p.Title != "" {
		e.Type, e.Title, e.Detail, e.Instance, e.Errors = p.Type, p.Title, p.Detail, p.Instance, p.Errors
		return e
	}
	e.Title = http.StatusText(resp.StatusCode)
	e.Detail = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
	return e
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date. It returns 0 for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// GapError is yielded by Replay, once, when events From..To (inclusive)
// were overwritten in the gateway's buffer before they could be read.
// Iteration goes on after it with the oldest buffered event: treat it as
// a warning that data is missing, or stop.
type GapError struct {
	From, To uint64
}

// Error says which seqs were lost.
func (e *GapError) Error() string {
	return fmt.Sprintf("eventgate: events %d to %d were overwritten before they could be read", e.From, e.To)
}

// EpochError is yielded by Replay, and ends it, when the gateway's log is
// not the one the position came from (ReplayOptions.Epoch, or the epoch
// of the first page): the gateway restarted with a new ring buffer, so
// seqs started again and "after" means nothing in the new log. Start
// again from the new log's beginning (After 0) or where you see fit.
type EpochError struct {
	Want, Got string // the epoch the position came from, and the gateway's
}

// Error names both epochs.
func (e *EpochError) Error() string {
	return fmt.Sprintf("eventgate: the log's epoch is %q, not %q: the gateway restarted and seqs started again", e.Got, e.Want)
}
