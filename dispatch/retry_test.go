package dispatch_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/eventgate/eventgate/dispatch"
)

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{
		{0, 8 * time.Second},
		{0.5, 10 * time.Second},
		{0.999999, 12 * time.Second},
	} {
		if got := dispatch.Jitter(10*time.Second, tc.r); got.Round(time.Millisecond) != tc.want {
			t.Errorf("Jitter(10s, %v) = %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999", 0, false},
		{"Thu, 26 Nov 2026 10:05:00 GMT", 5 * time.Minute, true},
		{"Thursday, 26-Nov-26 10:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Thu Nov 26 10:01:00 2026", time.Minute, true},              // asctime
		{"Thu, 26 Nov 2026 09:00:00 GMT", 0, true},                   // in the past
	} {
		got, ok := dispatch.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	const sched, longest = 5 * time.Second, 10 * time.Hour
	for _, tc := range []struct {
		name   string
		status int
		ra     string
		want   time.Duration
	}{
		{"no answer", 0, "", sched},
		{"500 ignores Retry-After", 500, "3600", sched},
		{"429 without header", 429, "", sched},
		{"429 longer", 429, "120", 2 * time.Minute},
		{"503 longer", 503, "60", time.Minute},
		{"503 shorter keeps schedule", 503, "1", sched},
		{"503 capped at the longest delay", 503, "86400", longest},
		{"429 HTTP-date", 429, "Thu, 26 Nov 2026 10:30:00 GMT", 30 * time.Minute},
		{"429 date in the past", 429, "Thu, 26 Nov 2026 09:00:00 GMT", sched},
		{"429 garbage", 429, "later", sched},
		{"301 ignores it", http.StatusMovedPermanently, "600", sched},
	} {
		if got := dispatch.RetryDelay(sched, tc.status, tc.ra, now, longest); got != tc.want {
			t.Errorf("%s: RetryDelay = %s, want %s", tc.name, got, tc.want)
		}
	}
}
