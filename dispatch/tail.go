package dispatch

import (
	"errors"
	"time"

	"github.com/eventgate/eventgate/store"
)

// Bounds of the live delivery tail.
const (
	// TailBuffer is how many attempts a tail may fall behind before it is
	// dropped (its channel closed, Dropped true).
	TailBuffer = 64
	// MaxTails is how many tails one webhook may have at once.
	MaxTails = 16
)

// ErrTooManyTails is returned by TailDeliveries when a webhook already
// has MaxTails tails.
var ErrTooManyTails = errors.New("too many delivery tails on this webhook")

// ErrStopped is returned by TailDeliveries once the dispatcher has stopped.
var ErrStopped = errors.New("dispatcher stopped")

// Attempt is one finished delivery attempt, as the delivery tail shows it.
// Attempt is 0 for an overwritten range recorded as a failed delivery.
// Zero StatusCode: no answer; zero NextAttemptAt: none due.
type Attempt struct {
	DeliveryID    string
	EventSeq      uint64
	Attempt       int
	Status        store.DeliveryStatus
	StatusCode    int
	Duration      time.Duration
	Error         string
	NextAttemptAt time.Time
	At            time.Time
}

// Tail is a live subscription to one webhook's finished attempts. C
// delivers them in order; it is closed when the tail falls TailBuffer
// behind (Dropped then reports true), when the webhook is deleted, when
// the dispatcher stops, or after Close. The endpoint never waits for a
// tail. Close may be called from any goroutine, more than once.
type Tail struct {
	C <-chan Attempt

	c       chan Attempt
	ep      *endpoint
	dropped bool // guarded by ep.mu
}

// TailDeliveries subscribes to webhook id's finished attempts from now
// on. Errors: store.ErrNotFound (wrapped), ErrTooManyTails, ErrStopped.
func (d *Dispatcher) TailDeliveries(id string) (*Tail, error) {
	d.mu.Lock()
	stopped := d.phase >= phaseShutdown
	d.mu.Unlock()
	if stopped {
		return nil, ErrStopped
	}
	ep, err := d.endpoint(d.base, id)
	if err != nil {
		return nil, err
	}
	c := make(chan Attempt, TailBuffer)
	t := &Tail{C: c, c: c, ep: ep}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.deleted {
		return nil, store.ErrNotFound
	}
	if len(ep.tails) >= MaxTails {
		return nil, ErrTooManyTails
	}
	ep.tails[t] = struct{}{}
	d.metrics.tails.Inc()
	return t, nil
}

// Close ends the subscription; C is closed.
func (t *Tail) Close() {
	t.ep.mu.Lock()
	defer t.ep.mu.Unlock()
	t.ep.endTailLocked(t)
}

// Dropped reports whether C was closed because the tail fell behind.
func (t *Tail) Dropped() bool {
	t.ep.mu.Lock()
	defer t.ep.mu.Unlock()
	return t.dropped
}

// endTailLocked removes t and closes its channel, once. Only holders of
// ep.mu send on or close a tail's channel, so neither races the other.
func (e *endpoint) endTailLocked(t *Tail) {
	if _, ok := e.tails[t]; ok {
		delete(e.tails, t)
		close(t.c)
		e.d.metrics.tails.Dec()
	}
}

func (e *endpoint) closeTailsLocked() {
	for t := range e.tails {
		e.endTailLocked(t)
	}
}

// tailLocked sends dl's latest attempt to every tail without waiting; a
// tail whose buffer is full is dropped.
func (e *endpoint) tailLocked(dl *delivery, attempt int) {
	if len(e.tails) == 0 {
		return
	}
	a := Attempt{
		DeliveryID: dl.ID, EventSeq: dl.EventSeq, Attempt: attempt, Status: dl.Status,
		StatusCode: dl.LastStatusCode, Duration: dl.Duration, Error: dl.LastError, At: dl.LastAttemptAt,
	}
	if dl.Status == store.DeliveryRetrying {
		a.NextAttemptAt = dl.NextAttemptAt
	}
	for t := range e.tails {
		select {
		case t.c <- a:
		default:
			t.dropped = true
			e.endTailLocked(t)
			e.d.metrics.tailDropped.Inc()
		}
	}
}
