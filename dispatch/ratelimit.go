package dispatch

import (
	"math"
	"time"
)

// MaxRateLimit is the largest rate_limit a webhook may have, in attempts
// per second.
const MaxRateLimit = 10_000

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

// next returns when the next whole token is earned.
func (b *tokenBucket) next(now time.Time) time.Time {
	if b.rate == 0 || b.tokens >= 1 {
		return now
	}
	return now.Add(time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second))))
}
