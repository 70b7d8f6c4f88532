package client_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/eventgate/eventgate/client"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 120 ", 120 * time.Second},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0}, // past
		{"Thu, 26 Nov 2026 10:01:00 GMT", time.Minute},
		{"Thursday, 26-Nov-26 10:01:00 GMT", time.Minute}, // RFC 850, still accepted
	} {
		if got := client.ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
