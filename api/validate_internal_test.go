package api

import (
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestEventInputValid checks that the hand-written fast path never accepts
// what the validator's tags refuse, and accepts the usual valid events.
func TestEventInputValid(t *testing.T) {
	v := newValidator()
	ok := eventInput{Type: "order.created", Data: jsontext.Value(`{}`)}
	for _, tc := range []struct {
		name string
		edit func(*eventInput)
		fast bool // what valid must say; the validator must agree when true
	}{
		{"minimal", func(*eventInput) {}, true},
		{"all fields", func(in *eventInput) {
			in.ID, in.Source, in.Subject, in.Time = "evt_1", "/shop", "order/1", "2026-11-26T10:00:00.5+01:00"
		}, true},
		{"data null", func(in *eventInput) { in.Data = jsontext.Value(`null`) }, true},
		{"no data", func(in *eventInput) { in.Data = nil }, false},
		{"no type", func(in *eventInput) { in.Type = "" }, false},
		{"bad type", func(in *eventInput) { in.Type = "order created" }, false},
		{"empty segment", func(in *eventInput) { in.Type = "order..created" }, false},
		{"reserved type", func(in *eventInput) { in.Type = "eventgate.webhook.disabled" }, false},
		{"type 128", func(in *eventInput) { in.Type = strings.Repeat("a", 128) }, true},
		{"type 129", func(in *eventInput) { in.Type = strings.Repeat("a", 129) }, false},
		{"id 128", func(in *eventInput) { in.ID = strings.Repeat("i", 128) }, true},
		{"id 129", func(in *eventInput) { in.ID = strings.Repeat("i", 129) }, false},
		{"id 128 runes, more bytes", func(in *eventInput) { in.ID = strings.Repeat("é", 128) }, false},
		{"source 1025", func(in *eventInput) { in.Source = strings.Repeat("s", 1025) }, false},
		{"subject 1025", func(in *eventInput) { in.Subject = strings.Repeat("s", 1025) }, false},
		{"bad time", func(in *eventInput) { in.Time = "yesterday" }, false},
		{"time without zone", func(in *eventInput) { in.Time = "2026-11-26T10:00:00" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			fast, slow := in.valid(), v.Struct(&in) == nil
			if fast != tc.fast {
				t.Errorf("valid() = %v, want %v", fast, tc.fast)
			}
			if fast && !slow {
				t.Errorf("valid() accepts what the validator refuses")
			}
		})
	}
}

// TestDecodeFieldErrors: JSON that decodes but does not fit a field names
// the field and what it takes.
func TestDecodeFieldErrors(t *testing.T) {
	s := &Server{validate: newValidator()}
	for _, tc := range []struct {
		body, field, message string
		into                 func() any
	}{
		{`{"after":-1}`, "/after", "must be a whole number from 0 to 18446744073709551615", func() any { return new(replayRequest) }},
		{`{"after":1.5}`, "/after", "must be a whole number from 0 to 18446744073709551615", func() any { return new(replayRequest) }},
		{`{"until":"x"}`, "/until", "must be a JSON number, not string", func() any { return new(replayRequest) }},
		{`{"url":"http://x","rate_limit":1e400}`, "/rate_limit", "must be a finite number within the range of a 64-bit float", func() any { return new(webhookCreate) }},
		{`{"url":"http://x","headers":{"X-A":5}}`, "/headers/X-A", "must be a JSON string, not number", func() any { return new(webhookCreate) }},
		{`{"url":"http://x","Url":"y"}`, "/Url", "unknown field", func() any { return new(webhookCreate) }},
		{`[1]`, "", "must be a JSON object, not array", func() any { return new(webhookCreate) }},
	} {
		p := s.decodeStrict([]byte(tc.body), "", tc.into())
		if p == nil || len(p.Errors) != 1 || p.Errors[0].Field != tc.field || p.Errors[0].Message != tc.message {
			t.Errorf("%s: got %+v, want %s: %s", tc.body, p, tc.field, tc.message)
		}
	}
}
