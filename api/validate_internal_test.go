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
