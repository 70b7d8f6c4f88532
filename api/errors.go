package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	"github.com/go-chi/chi/v5/middleware"
)

// errReadBody wraps an error reading a request body that is not the body
// limit (a client that stalls or breaks the connection mid-body).
var errReadBody = errors.New("could not read the request body")

// errorKind is one row of errorKinds: the errors it matches, the status
// (which names the problem type and title, see problemKinds), the detail a
// client is shown, and for a 5xx the level it is logged at.
type errorKind struct {
	match  func(error) bool
	status int
	// retryAfter is the Retry-After value in seconds ("" none): for a 503
	// that a client may retry.
	retryAfter string
	// detail is what the client reads; for a 5xx it never holds err's text
	// unless that text is one of ours and meant for clients.
	detail func(err error) string
	// fields lists the invalid fields of a 422 (nil: none).
	fields func(err error) []FieldError
	// level is the level a 5xx is logged at; 4xx are the client's own and
	// not logged.
	level slog.Level
}

// errorKinds maps every error a handler may meet to its answer; the first
// row that matches wins and anything else is a logged 500 that shows
// nothing of the error. Not-found errors are shown as they are: handlers
// wrap them to say what was not found (noSuch).
var errorKinds = []errorKind{
	{match: isType[*http.MaxBytesError], status: http.StatusRequestEntityTooLarge, detail: func(err error) string {
		tooBig, _ := errors.AsType[*http.MaxBytesError](err)
		return fmt.Sprintf("the body exceeds the limit of %d bytes (--max-body)", tooBig.Limit)
	}},
	{match: is(errReadBody), status: http.StatusBadRequest, detail: shown},
	{match: isType[*dispatch.TargetError], status: http.StatusUnprocessableEntity, detail: func(err error) string {
		te, _ := errors.AsType[*dispatch.TargetError](err)
		return "the webhook URL is refused: " + te.Reason
	}, fields: func(err error) []FieldError {
		te, _ := errors.AsType[*dispatch.TargetError](err)
		return []FieldError{{Field: "/url", Message: te.Reason}}
	}},
	// The handlers check headers first (headersValid lists every refusal);
	// this row answers a refusal the dispatcher finds itself.
	{match: isType[*dispatch.HeaderError], status: http.StatusUnprocessableEntity, detail: text("the webhook's headers are refused"),
		fields: func(err error) []FieldError {
			he, _ := errors.AsType[*dispatch.HeaderError](err)
			return []FieldError{headerField(he)}
		}},
	{match: is(dispatch.ErrTooManyWebhooks), status: http.StatusConflict,
		detail: text("the gateway already serves as many webhooks as it may (--max-webhooks); delete one first")},
	{match: is(dispatch.ErrReplayInProgress), status: http.StatusConflict,
		detail: text("a replay of this webhook is still being read; retry once it has been taken (see the delivery log)")},
	{match: is(store.ErrNotFound), status: http.StatusNotFound, detail: shown},
	{match: is(store.ErrEventTooLarge), status: http.StatusRequestEntityTooLarge, detail: func(err error) string {
		return "an event is larger than the event store takes: " + err.Error()
	}},
	{match: is(gateway.ErrDraining), status: http.StatusServiceUnavailable, retryAfter: "5", level: slog.LevelDebug,
		detail: text("the gateway is shutting down and accepts no new events")},
	{match: is(gateway.ErrHubClosed), status: http.StatusServiceUnavailable, retryAfter: "5", level: slog.LevelDebug,
		detail: text("draining: the gateway is shutting down")},
	{match: is(gateway.ErrHubFull), status: http.StatusServiceUnavailable, retryAfter: "5", level: slog.LevelDebug,
		detail: text("the gateway serves as many streams as it may (--max-streams); retry later")},
	{match: is(dispatch.ErrTooManyTails, dispatch.ErrStopped), status: http.StatusServiceUnavailable, retryAfter: "5",
		level: slog.LevelDebug, detail: shown},
	// With NATS: no quorum, a leader election, a timeout. A client retries
	// a 503; events with an id are de-duplicated should the write have
	// landed after all.
	{match: is(store.ErrUnavailable), status: http.StatusServiceUnavailable, retryAfter: "1", level: slog.LevelWarn,
		detail: text("the event store did not confirm the write; retry (events with an id are de-duplicated)")},
	// The client went away: this answer is for the record.
	{match: is(context.Canceled, context.DeadlineExceeded), status: http.StatusServiceUnavailable, retryAfter: "1",
		level: slog.LevelDebug, detail: text("the request ended before it could be completed")},
}

// internalError answers what no row of errorKinds matches.
var internalError = errorKind{status: http.StatusInternalServerError, level: slog.LevelError,
	detail: text("the request could not be completed")}

// kindOf returns the row of errorKinds err matches, or internalError.
func kindOf(err error) errorKind {
	for _, k := range errorKinds {
		if k.match(err) {
			return k
		}
	}
	return internalError
}

// Error answers err with the problem document errorKinds names for it,
// Retry-After included, and logs a 5xx with op (what the handler was
// doing, such as "create webhook"), the request and err. The client sees
// only the row's detail, never the text of an unexpected error. An error
// met after the request's context ended counts as the request ending.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, op string, err error) {
	if cerr := r.Context().Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (the request ended: %w)", err, cerr)
	}
	k := kindOf(err)
	if k.status >= 500 {
		args := []any{"op", op, "status", k.status, "method", r.Method, "path", r.URL.Path, "err", err}
		if id := middleware.GetReqID(r.Context()); id != "" {
			args = append(args, "request_id", id)
		}
		s.cfg.Logger.Log(r.Context(), k.level, "request failed", args...)
	}
	if k.retryAfter != "" {
		w.Header().Set("Retry-After", k.retryAfter)
	}
	var fields []FieldError
	if k.fields != nil {
		fields = k.fields(err)
	}
	fail(w, k.status, k.detail(err), fields...)
}

// noSuch words a store.ErrNotFound for the client ("no such webhook:
// webhook x: not found"); other errors pass unchanged, as a 500 must not
// be logged as a missing thing.
func noSuch(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no such %s: %w", what, err)
	}
	return err
}

// is matches errors that are any of targets.
func is(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

// isType matches errors with an E in their tree.
func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// text is a detail that is always s.
func text(s string) func(error) string { return func(error) string { return s } }

// shown is a detail that is the error's text: for errors of ours written
// for clients.
func shown(err error) string { return err.Error() }
