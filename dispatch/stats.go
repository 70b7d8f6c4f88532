package dispatch

import (
	"time"
)

// Stats are one webhook's live figures, in this process. They obey
// Little's law over one boundary, from "a matching event is stored" to
// "its delivery reaches a final outcome": InSystem ≈ ArrivalRate ×
// MeanTimeInSystem. Events waiting in the log for the endpoint to take them
// are inside the boundary, so an endpoint that falls behind shows it: L
// grows past λ·W while the backlog builds.
type Stats struct {
	InFlight  int    // attempts in progress
	Retrying  int    // deliveries waiting for their next attempt
	Succeeded uint64 // deliveries that succeeded
	Failed    uint64 // deliveries that ended failed (overwritten ranges included)
	// ArrivalRate is matching events stored per second, averaged over the
	// last minute (λ), whether the endpoint has taken them yet or not.
	ArrivalRate float64
	// MeanTimeInSystem is the mean time from an event being stored to its
	// delivery's final outcome, over deliveries finished in the last
	// minute (W).
	MeanTimeInSystem time.Duration
	// InSystem is matching events not yet at a final outcome (L): Waiting
	// plus deliveries pending, in flight or retrying.
	InSystem int
	// Waiting is matching events stored after the endpoint's cursor, not
	// yet taken (counted up to maxWaitingScan log positions).
	Waiting int
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

// arrive counts n arrivals stored at the given time; arrivals stored
// before the window are not counted.
func (w *window) arrive(now, stored time.Time, n int) {
	if now.Unix()-stored.Unix() >= windowSeconds {
		return
	}
	w.arrivals[w.bucket(stored)] += int64(n)
}

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
