package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// eventInput is one event as clients post it (application/json).
type eventInput struct {
	ID      string         `json:"id" validate:"max=128"`
	Type    string         `json:"type" validate:"required,max=128,eventtype,unreserved"`
	Source  string         `json:"source" validate:"max=1024"`
	Subject string         `json:"subject" validate:"max=1024"`
	Time    string         `json:"time" validate:"omitempty,datetime=2006-01-02T15:04:05Z07:00"`
	Data    jsontext.Value `json:"data" validate:"required"`
}

// rfc3339 is the layout of eventInput.Time's datetime tag.
const rfc3339 = "2006-01-02T15:04:05Z07:00"

// valid reports whether in passes every rule of its validate tags, checked
// by hand: the validator's reflection costs more than the rest of decoding
// an event. It may say no to a valid event (a long multi-byte string) but
// never yes to an invalid one; on no, the validator decides and names the
// fields. Keep it in step with the tags (TestEventInputValid checks both
// agree).
func (in *eventInput) valid() bool {
	if in.Time != "" {
		if _, err := time.Parse(rfc3339, in.Time); err != nil {
			return false
		}
	}
	return len(in.ID) <= 128 && in.Type != "" && len(in.Type) <= 128 &&
		store.ValidType(in.Type) && !gateway.IsReserved(in.Type) &&
		len(in.Source) <= 1024 && len(in.Subject) <= 1024 && in.Data != nil
}

func (in *eventInput) event() store.Event {
	e := store.Event{ID: in.ID, Type: in.Type, Source: in.Source, Subject: in.Subject, Data: json.RawMessage(in.Data)}
	e.Time = parseTime(in.Time)
	return e
}

// parseTime parses an already validated RFC 3339 time; "" gives zero.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{} // the usual case: skip Parse's error allocation
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t.UTC()
}

// Content types of POST /v1/events.
const (
	ctJSON            = "application/json"
	ctCloudEvent      = "application/cloudevents+json"
	ctCloudEventBatch = "application/cloudevents-batch+json"
)

var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the whole body, at most maxBody bytes. A body over the
// limit is a 413 problem, written here; ok is false then.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) bool {
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)); err != nil {
		s.Error(w, r, "read body", fmt.Errorf("%w: %w", errReadBody, err))
		return false
	}
	return true
}

// postEvents handles POST /v1/events in every mode of the contract.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	binary := r.Header.Get("ce-specversion") != "" && mediaType != ctCloudEvent && mediaType != ctCloudEventBatch
	if !binary && (err != nil || (mediaType != ctJSON && mediaType != ctCloudEvent && mediaType != ctCloudEventBatch)) {
		fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be %s, %s or %s, or a CloudEvents binary-mode request (ce-* headers)", ctJSON, ctCloudEvent, ctCloudEventBatch))
		return
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBufs.Put(buf)
	if !s.readBody(w, r, buf) {
		s.metrics.rejected(1)
		return
	}
	body := buf.Bytes()

	var events []store.Event
	var single bool
	var p *Problem
	switch {
	case binary:
		events, p = s.binaryCloudEvent(r.Header, mediaType, body)
		single = true
	case mediaType == ctCloudEvent:
		events, p = s.decodeCloudEvents(body, false)
		single = true
	case mediaType == ctCloudEventBatch:
		events, p = s.decodeCloudEvents(body, true)
	default:
		events, single, p = s.decodeEvents(body)
	}
	if p != nil {
		s.metrics.rejected(max(1, len(events)))
		writeProblem(w, *p)
		return
	}
	if p := accessOf(r).checkPublish(events, single); p != nil {
		s.metrics.rejected(len(events))
		writeProblem(w, *p)
		return
	}
	if !s.limiter.allow(w, r, len(events)) {
		s.metrics.rejected(len(events))
		return
	}
	s.publish(w, r, events, single, start)
}

// publish appends events and writes the contract's answer.
func (s *Server) publish(w http.ResponseWriter, r *http.Request, events []store.Event, single bool, start time.Time) {
	out, err := s.cfg.Publisher.Publish(r.Context(), events, make([]store.Appended, 0, len(events)))
	if err != nil {
		s.Error(w, r, "publish events", err)
		return
	}
	status, dups := http.StatusAccepted, 0
	for _, a := range out {
		if a.Duplicate {
			dups++
		}
	}
	if dups == len(out) {
		status = http.StatusOK // nothing new: an idempotent repeat
	}
	s.metrics.ingested(len(out)-dups, dups, time.Since(start))
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBufs.Put(buf)
	if single {
		appendAppended(buf, out[0])
	} else {
		buf.WriteString(`{"events":[`)
		for i, a := range out {
			if i > 0 {
				buf.WriteByte(',')
			}
			appendAppended(buf, a)
		}
		buf.WriteString(`]}`)
	}
	buf.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// appendAppended writes a as {"seq":N,"id":"…"[,"duplicate":true]}: the
// answer of every ingest request, built without reflection.
func appendAppended(buf *bytes.Buffer, a store.Appended) {
	buf.WriteString(`{"seq":`)
	buf.Write(strconv.AppendUint(buf.AvailableBuffer(), a.Seq, 10))
	buf.WriteString(`,"id":`)
	buf.Write(store.AppendJSONString(buf.AvailableBuffer(), a.ID))
	if a.Duplicate {
		buf.WriteString(`,"duplicate":true`)
	}
	buf.WriteByte('}')
}

// decodeEvents decodes one event object or a batch array (application/json).
func (s *Server) decodeEvents(body []byte) (events []store.Event, single bool, p *Problem) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, badJSON("the body is empty; send an event object or an array of them")
	}
	if trimmed[0] != '[' {
		var in eventInput
		if p := s.decodeStrict(body, "", &in); p != nil {
			return nil, true, p
		}
		return []store.Event{in.event()}, true, nil
	}
	if events, ok := s.decodeBatch(body); ok {
		return events, false, nil
	}
	events, p = s.decodeBatchReporting(body)
	return events, false, p
}

// decodeBatch decodes a valid batch in one streaming pass, the usual case.
// On any problem ok is false and decodeBatchReporting, slower, names them
// all.
func (s *Server) decodeBatch(body []byte) (events []store.Event, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	events = make([]store.Event, 0, 16)
	for dec.PeekKind() == '{' {
		if len(events) == s.cfg.MaxBatch {
			return nil, false
		}
		var in eventInput
		if err := jsonv2.UnmarshalDecode(dec, &in, strictJSON); err != nil || !in.valid() {
			return nil, false
		}
		events = append(events, in.event())
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != ']' {
		return nil, false
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return events, len(events) > 0
}

// decodeBatchReporting decodes a batch item by item and reports every
// invalid item, not just the first.
func (s *Server) decodeBatchReporting(body []byte) ([]store.Event, *Problem) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if _, err := dec.ReadToken(); err != nil { // '['
		return nil, badJSON(err.Error())
	}
	var events []store.Event
	var errs []FieldError
	for i := 0; dec.PeekKind() != ']'; i++ {
		if i == s.cfg.MaxBatch {
			return nil, invalid(fmt.Sprintf("the batch holds more than %d events, the most allowed (--max-batch)", s.cfg.MaxBatch),
				[]FieldError{{Field: "", Message: fmt.Sprintf("must hold at most %d events", s.cfg.MaxBatch)}})
		}
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, badJSON(err.Error())
		}
		var in eventInput
		if p := s.decodeStrict(raw, "/"+strconv.Itoa(i), &in); p != nil {
			if p.Status != http.StatusUnprocessableEntity {
				return nil, p
			}
			errs = append(errs, p.Errors...)
			events = append(events, store.Event{})
			continue
		}
		events = append(events, in.event())
	}
	if _, err := dec.ReadToken(); err != nil { // ']'
		return nil, badJSON(err.Error())
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, badJSON("unexpected data after the JSON value")
	}
	if p := s.checkBatchSize(len(events)); p != nil {
		return nil, p
	}
	if errs != nil {
		return nil, invalid(fmt.Sprintf("the batch was not stored: %d of %d events are invalid", countItems(errs), len(events)), errs)
	}
	return events, nil
}

func (s *Server) checkBatchSize(n int) *Problem {
	switch {
	case n == 0:
		return invalid("the batch is empty", []FieldError{{Field: "", Message: "must hold at least one event"}})
	case n > s.cfg.MaxBatch:
		return invalid(fmt.Sprintf("the batch holds %d events; at most %d are allowed (--max-batch)", n, s.cfg.MaxBatch),
			[]FieldError{{Field: "", Message: fmt.Sprintf("must hold at most %d events", s.cfg.MaxBatch)}})
	}
	return nil
}

// strictJSON is how every request body is decoded: unknown members are
// refused, and (json/v2's defaults) member names match exactly, and
// duplicate names, invalid UTF-8 and trailing data are refused.
var strictJSON = jsonv2.RejectUnknownMembers(true)

// decodeStrict decodes one JSON value into v strictly and validates it. A
// value that is valid JSON but the wrong shape is a 422 naming its fields
// (paths start with prefix); malformed JSON is a 400.
func (s *Server) decodeStrict(raw []byte, prefix string, v any) *Problem {
	if err := jsonv2.Unmarshal(raw, v, strictJSON); err != nil {
		if fe, ok := decodeFieldError(prefix, err); ok {
			return invalid("the event is invalid", []FieldError{fe})
		}
		return badJSON(err.Error())
	}
	if in, ok := v.(*eventInput); ok && in.valid() {
		return nil
	}
	if err := s.validate.Struct(v); err != nil {
		return invalid("the event is invalid", fieldErrors(prefix, err))
	}
	return nil
}

func badJSON(detail string) *Problem {
	p := newProblem(http.StatusBadRequest, "the body is not valid JSON: "+detail)
	p.Type, p.Title = problemBase+malformedJSON[0], malformedJSON[1]
	return &p
}

func invalid(detail string, errs []FieldError) *Problem {
	p := newProblem(http.StatusUnprocessableEntity, detail, errs...)
	return &p
}

// countItems counts the distinct batch items ("/3/...") among errs.
func countItems(errs []FieldError) int {
	seen := map[string]bool{}
	for _, e := range errs {
		item, _, _ := strings.Cut(strings.TrimPrefix(e.Field, "/"), "/")
		seen[item] = true
	}
	return len(seen)
}

// tooManyPatterns answers 422 naming field when pats has more than
// store.MaxFilterPatterns patterns: each costs every event a reader
// examines a test. ok is true when it has answered.
func tooManyPatterns(w http.ResponseWriter, field string, pats []string) bool {
	if len(pats) <= store.MaxFilterPatterns {
		return false
	}
	msg := fmt.Sprintf("at most %d patterns, got %d", store.MaxFilterPatterns, len(pats))
	fail(w, http.StatusUnprocessableEntity, field+": "+msg, FieldError{Field: field, Message: msg})
	return true
}

// listEvents handles GET /v1/events (replay).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	errs := unknownParams(q, replayParams)
	after, err := parseUint(q.Get("after"), 0)
	if err != nil {
		errs = append(errs, FieldError{Field: "after", Message: "must be a non-negative integer"})
	}
	limit, err := parseUint(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > 1000 {
		errs = append(errs, FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"})
	}
	pats := typePatterns(q)
	if tooManyPatterns(w, "type", pats) {
		return
	}
	filter, err := store.ParseFilter(pats)
	if err != nil {
		errs = append(errs, FieldError{Field: "type", Message: err.Error()})
	}
	if errs != nil {
		fail(w, http.StatusBadRequest, "invalid query parameters", errs...)
		return
	}
	filter, p := accessOf(r).readFilter("type", pats, filter)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	page, err := s.cfg.Publisher.Log().Read(r.Context(), after, int(limit), filter, nil)
	if err != nil {
		s.Error(w, r, "replay events", err)
		return
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBufs.Put(buf)
	buf.WriteString(`{"events":[`)
	for i, rec := range page.Records {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(rec.JSON)
	}
	fmt.Fprintf(buf, `],"next":%d,"oldest":%d,"newest":%d,"epoch":%q`, page.Next, page.Oldest, page.Newest, page.Epoch)
	if page.Gap != nil {
		fmt.Fprintf(buf, `,"gap":{"from":%d,"to":%d}`, page.Gap.From, page.Gap.To)
	}
	buf.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

// getEvent handles GET /v1/events/{seq}.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, "seq must be a positive integer")
		return
	}
	rec, err := s.cfg.Publisher.Log().Get(r.Context(), seq)
	if a := accessOf(r); err == nil && a != nil && !a.subscribe.Match(rec.Type) {
		err = store.ErrNotFound // outside the token's scope: as if never stored
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("event %d was never stored or has been overwritten: %w", seq, err)
		}
		s.Error(w, r, "get event", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(rec.JSON)
}

func parseUint(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// splitList splits repeatable, comma-separated query values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
