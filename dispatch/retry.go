package dispatch

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultRetrySchedule is the delay before each retry when
// Config.Schedule is empty: 8 attempts over about 27.6 hours.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// jitterFraction is the ± spread applied to every scheduled delay.
const jitterFraction = 0.2

// Jitter spreads d by ±20%: r in [0,1) maps linearly onto [0.8d, 1.2d).
func Jitter(d time.Duration, r float64) time.Duration {
	return time.Duration(float64(d) * (1 - jitterFraction + 2*jitterFraction*r))
}

// ParseRetryAfter parses a Retry-After header value: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3), relative to now. ok is false for an empty
// or malformed value; a date in the past gives 0.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, t.Sub(now)), true
}

// RetryDelay is the delay before the next attempt after a failed one:
// scheduled (already jittered), unless the answer was 429 or 503 with a
// Retry-After asking for longer, which is honoured up to longest (the
// schedule's longest delay). status is 0 when no answer was received.
func RetryDelay(scheduled time.Duration, status int, retryAfter string, now time.Time, longest time.Duration) time.Duration {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return scheduled
	}
	ra, ok := ParseRetryAfter(retryAfter, now)
	if !ok || ra <= scheduled {
		return scheduled
	}
	return max(scheduled, min(ra, longest))
}
