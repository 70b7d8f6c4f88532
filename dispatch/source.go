package dispatch

import (
	"context"
	"time"

	"github.com/eventgate/eventgate/store"
)

// A source is where an endpoint's deliveries come from, and the settler
// of their attempts. There are two: logSource, a cursor over the log whose
// waiting retries are entries in the dispatcher's retry heap (the ring
// buffer, or any store that does not share deliveries), and queueSource,
// the webhook's queue in a store that shares deliveries between gateways
// (natsjs: a durable JetStream consumer), settled with its own Ack,
// NakWithDelay and Term. Everything above the source is one code path:
// the endpoint decides each attempt's verdict (decide) and the source
// carries it out.
//
// Methods ending in Locked run with the endpoint's mutex held; the rest
// without it. Only the endpoint goroutine calls take and received;
// settleLocked is also called by the attempt worker that booked the
// result (endpoint.settle: a direct attempt on the log, any on a queue),
// and queueSource's chainLocked only by such a worker.
type source interface {
	// canTakeLocked reports whether the source may hand out new
	// deliveries while the dispatcher drains to target.
	canTakeLocked(draining bool, target uint64) bool
	// take starts up to free new deliveries (as attempts, through the
	// endpoint) when can; it returns what to wait on for more (nil: only
	// kicks and results) and when to wake up regardless (zero: never).
	take(can bool, free int, draining bool, buf *[]store.Record, wake, now time.Time) (<-chan struct{}, time.Time)
	// incoming is the channel of deliveries the source hands out
	// asynchronously (nil when it has none), and received books one of
	// them, or the channel's end (ok false).
	incoming() <-chan store.Queued
	received(m store.Queued, ok bool)
	// settleLocked carries out verdict v for dl (with delay, for
	// verdictRetry), the delivery of an attempt that owned the source's
	// message when owned (a scheduled attempt, not a manual one); it
	// returns the I/O to do once the lock is released, or nil.
	settleLocked(dl *delivery, v verdict, delay time.Duration, owned bool) func() error
	// retryPendingLocked reports whether a retry of dl waits in the
	// source (so a failed manual attempt leaves it standing).
	retryPendingLocked(dl *delivery) bool
	// handsBack reports whether an attempt this gateway stopped is handed
	// back at once for another gateway to make (verdictRelease), rather
	// than retried on the schedule.
	handsBack() bool
	// drainedLocked reports whether nothing is left to take before the
	// drain target.
	drainedLocked(target uint64) bool
	// apply brings the source in line with w once the endpoint has
	// installed it: types changed, and, when re-enabled, where delivery
	// resumes (after is the endpoint's answer; the source may correct
	// it). It returns the seq delivery continues after.
	apply(ctx context.Context, w store.Webhook, typesChanged, reenabled, newest bool, after uint64) (uint64, error)
	// moveToLocked moves the cursor to seq when it is behind (resume newest)
	// and returns the seq delivery continues after.
	moveToLocked(seq uint64) uint64
	// backlog returns how many matching events wait to be taken, how
	// many of them were stored since, and the lag in events.
	backlog(since time.Time) (waiting, recent int, lag uint64)
	// notTaken counts the matching events left untaken up to target when
	// the dispatcher stopped (a shared queue keeps them: 0).
	notTaken(target uint64) int
	// adopt brings delivery id into the endpoint's log when the source
	// shares it and only another gateway knows it.
	adopt(ctx context.Context, id string) error
	// deliveries lists the delivery log, newest first, without attempt
	// histories: only those in status unless it is "", starting after
	// delivery before unless it is "".
	deliveries(status store.DeliveryStatus, limit int, before string) []store.Delivery
	// delivery returns delivery id with its attempt history, or an error
	// wrapping store.ErrNotFound.
	delivery(ctx context.Context, id string) (store.Delivery, error)
	// countLocked notes a delivery's final outcome for shared totals.
	countLocked(ok bool)
	// totals returns the webhook's deliveries that ended succeeded and
	// failed: this gateway's since it started, or a shared store's.
	totals() (succeeded, failed uint64)
	// recordLocked notes dl's new state for a shared delivery log.
	recordLocked(dl *delivery)
	// flush writes what recordLocked and countLocked noted, outside the
	// lock: the states at once, the counts once they are due (or now,
	// when final). It returns when the counts left fall due (zero: none).
	flush(final bool) time.Time
	// shared reports whether the source is a queue shared by gateways
	// (for the JetStream-only metrics).
	shared() bool
}

// verdict is what one attempt's outcome means for its delivery, in the
// terms of nats.go's jetstream: delivered (Ack), attempt again after a
// delay (NakWithDelay), never again (Term).
type verdict uint8

const (
	// verdictAck: delivered; the delivery succeeded.
	verdictAck verdict = iota
	// verdictTerm: given up (410 Gone, the schedule is spent, or a manual
	// attempt of a delivery not waiting for a retry failed); it failed.
	verdictTerm
	// verdictRetry: attempt again after the schedule's next delay.
	verdictRetry
	// verdictRelease: this gateway stopped the attempt (shutdown,
	// delete); another one makes it at once.
	verdictRelease
	// verdictStands: a manual attempt failed while a scheduled retry
	// waits; that retry stands.
	verdictStands
)

// decide names the verdict of an attempt that ended with outcome: manual
// for an attempt asked for by the API, pending when a scheduled retry of
// the delivery waits in the source, retrying when the delivery's status is
// retrying, handsBack when the source hands a stopped attempt to another
// gateway, retriesLeft when the schedule has a delay left.
func decide(outcome string, manual, pending, retrying, handsBack, retriesLeft bool) verdict {
	switch {
	case outcome == outcomeSuccess:
		return verdictAck
	case outcome == outcomeGone:
		return verdictTerm
	case manual && pending:
		return verdictStands
	case manual && !retrying:
		return verdictTerm
	case outcome == outcomeCanceled && handsBack:
		return verdictRelease
	case retriesLeft:
		return verdictRetry
	default:
		return verdictTerm
	}
}
