package dispatch

import (
	"math"
	"testing"
	"time"
)

// TestTokenBucketNextExtremes: the time of the next token is never in the
// past and never more than maxTokenWait ahead, however small the rate (a
// wait that overflowed time.Duration used to wrap to the past, so the
// endpoint's timer fired at once, again and again: a spinning core).
func TestTokenBucketNextExtremes(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rate float64
		want time.Duration // wait from an empty bucket
	}{
		{MaxRateLimit, 100 * time.Microsecond},
		{2, 500 * time.Millisecond},
		{MinRateLimit, 1000 * time.Second},
		{1.0 / 86400, 24 * time.Hour},
		{1e-6, maxTokenWait},
		{1e-10, maxTokenWait},
		{1e-11, maxTokenWait},
		{1e-300, maxTokenWait},
		{math.SmallestNonzeroFloat64, maxTokenWait}, // 1/rate is +Inf
	} {
		var b tokenBucket
		b.set(tc.rate, 0, now)
		for b.available(now) > 0 { // spend the burst
			b.take()
		}
		if got := b.next(now).Sub(now); got != tc.want {
			t.Errorf("rate %g: next token in %v, want %v", tc.rate, got, tc.want)
		}
		// Later, with a fraction earned, still within bounds.
		later := now.Add(time.Hour)
		if n := b.available(later); float64(n) > b.burst {
			t.Errorf("rate %g: %d tokens after an hour", tc.rate, n)
		}
		if got := b.next(later).Sub(later); got < 0 || got > maxTokenWait {
			t.Errorf("rate %g: next token an hour later in %v", tc.rate, got)
		}
	}
}

// TestCheckRateLimit: 0 or MinRateLimit..MaxRateLimit.
func TestCheckRateLimit(t *testing.T) {
	for _, r := range []float64{0, MinRateLimit, 0.5, 1, 50, MaxRateLimit} {
		if err := CheckRateLimit(r); err != nil {
			t.Errorf("%g: %v", r, err)
		}
	}
	for _, r := range []float64{-1, -MinRateLimit, 1e-11, 1e-300, math.SmallestNonzeroFloat64, 0.000999, MaxRateLimit + 0.5, math.Inf(1), math.NaN()} {
		if err := CheckRateLimit(r); err == nil {
			t.Errorf("%g accepted", r)
		}
	}
}
