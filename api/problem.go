package api

import (
	"encoding/json"
	"io"
	"net/http"
)

// problemBase prefixes every problem type URI; the slug names the kind.
const problemBase = "https://eventgate.dev/problems/"

// FieldError names one invalid field: a JSON-pointer-like path such as
// "/1/type" and a message for people.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// problem kinds: slug and title per status, the one place they are named.
var problemKinds = map[int][2]string{
	http.StatusBadRequest:            {"bad-request", "Bad request"},
	http.StatusUnauthorized:          {"unauthorized", "Unauthorized"},
	http.StatusForbidden:             {"forbidden", "Forbidden"},
	http.StatusNotFound:              {"not-found", "Not found"},
	http.StatusMethodNotAllowed:      {"method-not-allowed", "Method not allowed"},
	http.StatusMisdirectedRequest:    {"misdirected-request", "Misdirected request"},
	http.StatusRequestEntityTooLarge: {"body-too-large", "Request body too large"},
	http.StatusConflict:              {"conflict", "Conflict"},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type"},
	http.StatusUnprocessableEntity:   {"validation-error", "Validation failed"},
	http.StatusTooManyRequests:       {"rate-limited", "Too many requests"},
	http.StatusServiceUnavailable:    {"unavailable", "Service unavailable"},
	http.StatusInternalServerError:   {"internal", "Internal server error"},
}

// malformedJSON is the 400 kind for bodies that are not JSON.
var malformedJSON = [2]string{"malformed-json", "Malformed JSON"}

// originNotAllowed is the 403 kind for browsers' requests from an origin
// not in --cors-origins (see checkOrigin).
var originNotAllowed = [2]string{"origin-not-allowed", "Origin not allowed"}

func newProblem(status int, detail string, errs ...FieldError) Problem {
	k, ok := problemKinds[status]
	if !ok {
		k = [2]string{"error", http.StatusText(status)}
	}
	return Problem{Type: problemBase + k[0], Title: k[1], Status: status, Detail: detail, Errors: errs}
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = newEncoder(w).Encode(p)
}

// fail writes a problem of the given status with a detail.
func fail(w http.ResponseWriter, status int, detail string, errs ...FieldError) {
	writeProblem(w, newProblem(status, detail, errs...))
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = newEncoder(w).Encode(v)
}

// newEncoder is a JSON encoder that leaves '<', '>' and '&' unescaped
// (type patterns such as "order.>" read as written).
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
