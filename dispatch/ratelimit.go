package dispatch

import (
	"fmt"
	"math"
	"time"
)

// MaxRateLimit is the largest rate_limit a webhook may have, in attempts
// per second.
const MaxRateLimit = 10_000

// MinRateLimit is the smallest non-zero rate_limit a webhook may have, in
// attempts per second: one attempt every 1000 s (16 min 40 s). Slower than
// that a limit is a disabled webhook in disguise (a day's events would
// take months), and far slower (below ~1e-10) the wait for the next token
// no longer fits a time.Duration.
const MinRateLimit = 0.001

// maxTokenWait bounds the wait for the next token, whatever the rate: the
// arithmetic stays finite even for a rate no check let through.
const maxTokenWait = 24 * time.Hour

// CheckRateLimit reports whether r is a valid rate_limit: 0 (no limit) or
// from MinRateLimit to MaxRateLimit attempts per second.
func CheckRateLimit(r float64) error {
	if r == 0 || (r >= MinRateLimit && r <= MaxRateLimit) {
		return nil
	}
	return fmt.Errorf("rate limit %v is neither 0 (no limit) nor within %v..%d per second", r, MinRateLimit, MaxRateLimit)
}

// burstWindow is how much of a second's worth of tokens a bucket holds: a
// limited endpoint may send rate/10 attempts at once after being idle,
// never more (at least one).
const burstWindow = 0.1

// tokenBucket limits an endpoint's attempt rate. It is a few lines rather
// than golang.org/x/time/rate because the endpoint goroutine needs only
// "how many now" and "when is the next one" under the endpoint's mutex,
// never a blocking Wait; it reads time.Now, so synctest drives it. Not
// safe for concurrent use: the endpoint's mutex guards it.
type tokenBucket struct {
	rate   float64 // tokens per second; 0: unlimited
	burst  float64
	tokens float64
	last   time.Time
}

// set changes the rate to the smaller non-zero of limit and allowed
// (attempts per second; 0 means none), keeping the tokens already earned
// up to the new burst.
func (b *tokenBucket) set(limit, allowed float64, now time.Time) {
	rate := limit
	if allowed > 0 && (rate == 0 || allowed < rate) {
		rate = allowed
	}
	if rate == b.rate {
		return
	}
	b.refill(now)
	wasUnlimited := b.rate == 0
	b.rate, b.burst = rate, max(1, math.Floor(rate*burstWindow))
	if wasUnlimited {
		b.tokens = b.burst
	}
	b.tokens, b.last = min(b.tokens, b.burst), now
}

func (b *tokenBucket) refill(now time.Time) {
	if b.rate > 0 && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// available returns how many attempts may start now (a large number when
// unlimited).
func (b *tokenBucket) available(now time.Time) int {
	if b.rate == 0 {
		return math.MaxInt32
	}
	b.refill(now)
	return int(b.tokens)
}

// take spends one token (no-op when unlimited).
func (b *tokenBucket) take() {
	if b.rate > 0 {
		b.tokens--
	}
}

// next returns when the next whole token is earned: never before now,
// never after now + maxTokenWait (a rate so small that the wait would
// overflow time.Duration would otherwise wrap to the past and spin).
func (b *tokenBucket) next(now time.Time) time.Time {
	if b.rate == 0 || b.tokens >= 1 {
		return now
	}
	wait := (1 - b.tokens) / b.rate // seconds; +Inf or NaN for a rate near 0
	if !(wait < maxTokenWait.Seconds()) {
		return now.Add(maxTokenWait)
	}
	return now.Add(max(0, time.Duration(math.Ceil(wait*float64(time.Second)))))
}
