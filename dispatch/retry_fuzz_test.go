package dispatch_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/dispatch"
)

var digitsOnly = regexp.MustCompile(`^[0-9]+$`)

// FuzzRetryAfter checks ParseRetryAfter and RetryDelay against a naive
// reading of RFC 9110 §10.2.3 and against the contract's bounds: the delay
// is never negative, never shorter than scheduled, never longer than the
// schedule's longest delay unless the schedule itself is.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"120", " 5 ", "0", "-1", "1.5", "Wed, 26 Nov 2026 10:05:00 GMT", "Wednesday, 26-Nov-26 10:05:00 GMT",
		"Wed Nov 26 10:05:00 2026", "Thu, 01 Jan 1970 00:00:00 GMT", "99999999999999999999", "", "soon"} {
		f.Add(s, int64(5*time.Second), 503)
	}
	f.Fuzz(func(t *testing.T, v string, scheduledNs int64, status int) {
		d, ok := dispatch.ParseRetryAfter(v, now)
		trimmed := strings.TrimSpace(v)
		if digitsOnly.MatchString(trimmed) {
			n, err := strconv.ParseUint(trimmed, 10, 32)
			if (err == nil) != ok || (ok && d != time.Duration(n)*time.Second) {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; seconds reference says %d, %v", v, d, ok, n, err)
			}
		} else if when, err := http.ParseTime(trimmed); err == nil {
			if want := max(0, when.Sub(now)); !ok || d != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; date reference says %v", v, d, ok, want)
			}
		} else if ok {
			t.Fatalf("ParseRetryAfter(%q) accepted a malformed value as %v", v, d)
		}
		if d < 0 {
			t.Fatalf("negative delay %v", d)
		}
		scheduled := time.Duration(scheduledNs % int64(24*time.Hour))
		if scheduled < 0 {
			scheduled = -scheduled
		}
		longest := 10 * time.Hour
		got := dispatch.RetryDelay(scheduled, status, v, now, longest)
		if got < scheduled || got > max(scheduled, longest) {
			t.Fatalf("RetryDelay(%v, %d, %q) = %v, outside [scheduled, max(scheduled, longest)]", scheduled, status, v, got)
		}
		if status != 429 && status != 503 && got != scheduled {
			t.Fatalf("status %d changed the delay to %v", status, got)
		}
	})
}
