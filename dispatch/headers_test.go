package dispatch_test

import (
	"testing"

	"github.com/eventgate/eventgate/dispatch"
)

// TestCheckHeaderValues: a value must be an RFC 9110 field-value.
func TestCheckHeaderValues(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"Bearer k1", true},
		{"a\tb", true},
		{"Grüße, 東京", true}, // obs-text: any byte from 0x80
		{"\x80\xff", true},
		{"!~", true},
		{"a\x0bb", false},
		{"\x01", false},
		{"x\x7f", false},
		{"a\x00b", false},
		{"a\r\nX-Injected: 1", false},
		{"a\nb", false},
		{"a\x1fb", false},
		{" lead", false},
		{"trail ", false},
		{"\tlead", false},
		{"trail\t", false},
		{" ", false},
	} {
		errs := dispatch.CheckHeaders(map[string]string{"X-V": tc.value})
		if ok := len(errs) == 0; ok != tc.ok {
			t.Errorf("value %q: errs %v, want ok=%v", tc.value, errs, tc.ok)
		}
		if len(errs) == 1 && errs[0].Name != "X-V" {
			t.Errorf("value %q: error names %q", tc.value, errs[0].Name)
		}
	}
}
