package gateway

import (
	"time"
)

// Stats are one webhook's live figures, in this process. They obey
// Little's law over one boundary, "taken from the log" to "final outcome":
// InSystem ≈ ArrivalRate × MeanTimeInSystem.
type Stats struct {
	InFlight  int    // attempts in progress
	Retrying  int    // deliveries waiting for their next attempt
	Succeeded uint64 // deliveries that succeeded
	Failed    uint64 // deliveries that ended failed (overwritten ranges included)
	// ArrivalRate is deliveries taken from the log per second, averaged
	// over the last minute (λ).
	ArrivalRate float64
	// MeanTimeInSystem is the mean time from taking an event to its
	// delivery's final outcome, over deliveries finished in the last
	// minute (W).
	MeanTimeInSystem time.Duration
	// InSystem is deliveries taken and not yet finished: pending, in
	// flight or retrying (L).
	InSystem int
	// Lag is how many events the endpoint's cursor is behind the log's
	// newest seq (matching or not): the queue in front of the endpoint.
	Lag uint64
}

// windowSeconds is the span of the sliding windows behind Stats.
const windowSeconds = 60

// window counts arrivals and finished deliveries per second over the last
// minute. Not safe for concurrent use: the endpoint's mutex guards it.
type window struct {
	sec      [windowSeconds]int64 // the Unix second each bucket holds
	arrivals [windowSeconds]int64
	finished [windowSeconds]int64
	sojourn  [windowSeconds]time.Duration
}

func (w *window) bucket(now time.Time) int {
	s := now.Unix()
	i := int(s % windowSeconds)
	if w.sec[i] != s {
		w.sec[i], w.arrivals[i], w.finished[i], w.sojourn[i] = s, 0, 0, 0
	}
	return i
}

func (w *window) arrive(now time.Time, n int) { w.arrivals[w.bucket(now)] += int64(n) }

func (w *window) finish(now time.Time, inSystem time.Duration) {
	i := w.bucket(now)
	w.finished[i]++
	w.sojourn[i] += inSystem
}

// rates returns λ (per second) and W over the window ending at now.
func (w *window) rates(now time.Time) (lambda float64, mean time.Duration) {
	s := now.Unix()
	var arrivals, finished int64
	var sojourn time.Duration
	for i := range w.sec {
		if s-w.sec[i] < windowSeconds {
			arrivals += w.arrivals[i]
			finished += w.finished[i]
			sojourn += w.sojourn[i]
		}
	}
	if finished > 0 {
		mean = sojourn / time.Duration(finished)
	}
	return float64(arrivals) / windowSeconds, mean
}
