package dispatch

// From an attempt's result to its settlement: finish names the outcome
// and the verdict, books the delivery's new state and has the source
// settle it.

import (
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// finish records the outcome of one attempt: its verdict (decide), the
// delivery's new state, and the source's settlement, done outside the
// lock. It runs on the endpoint goroutine, or on the attempt worker (a
// direct attempt on the log's cursor, or any on a queue: see settle); it
// returns whether the endpoint goroutine has work because of it (see
// needsRunLocked).
func (e *endpoint) finish(r result) (wake bool) {
	if r.hs != nil {
		e.finishHandshake(r)
		return false
	}
	d := e.d
	now := time.Now()
	e.mu.Lock()
	e.inFlight--
	dl := r.dl
	dl.busy = false
	trigger := store.TriggerRetry
	switch {
	case r.manual:
		trigger = store.TriggerManual
	case dl.Attempts == 0 && dl.Origin == store.OriginReplay:
		trigger = store.TriggerReplay
	case dl.Attempts == 0:
		trigger = store.TriggerScheduled
	}
	dl.Attempts++
	dl.LastAttemptAt, dl.Duration, dl.LastStatusCode = r.start, r.dur, r.status
	outcome, msg := classify(r, d.cfg.Timeout)
	e.log.addAttempt(dl, store.AttemptRecord{Start: r.start, Duration: r.dur, StatusCode: r.status, Error: msg,
		Trigger: trigger, Response: responseText(r.body), ContentType: r.contentType})
	d.metrics.attempts.WithLabelValues(outcome).Inc()
	d.metrics.attemptDur.Observe(r.dur.Seconds())
	switch outcome {
	case outcomeSuccess:
		e.failingSince = time.Time{}
	case outcomeCanceled:
	default:
		if e.failingSince.IsZero() {
			e.failingSince = r.start
		}
	}
	v := decide(outcome, r.manual, e.src.retryPendingLocked(dl), dl.Status == store.DeliveryRetrying,
		e.src.handsBack(), dl.retries < len(d.cfg.Schedule))
	var delay time.Duration
	disable := ""
	switch v {
	case verdictAck:
		if dl.entry != nil && d.retries.remove(dl.entry) {
			// A manual attempt delivered it: the scheduled retry is void,
			// and no longer counted as waiting.
			dl.entry = nil
			e.retrying--
		}
		dl.Status, dl.LastError, dl.NextAttemptAt = store.DeliverySucceeded, "", time.Time{}
		if !dl.final && !dl.away {
			d.metrics.endToEnd.Observe(now.Sub(dl.storedAt).Seconds())
		}
		e.finalLocked(dl, now, true)
	case verdictTerm:
		dl.Status, dl.LastError, dl.NextAttemptAt = store.DeliveryFailed, msg, time.Time{}
		if outcome == outcomeGone {
			dl.LastError = msg + "; the webhook was disabled"
			disable = ReasonGone
		}
		e.finalLocked(dl, now, false)
	case verdictRetry:
		delay = RetryDelay(Jitter(d.cfg.Schedule[dl.retries], d.cfg.Rand()), r.status, r.retryAfter, now, d.longest)
		dl.retries++
		dl.Status, dl.LastError, dl.NextAttemptAt = store.DeliveryRetrying, msg, now.Add(delay)
		d.metrics.retries.Inc()
	case verdictRelease, verdictStands:
		dl.LastError = msg
	}
	settle := e.src.settleLocked(dl, v, delay, !r.manual)
	if disable == "" && !e.failingSince.IsZero() && now.Sub(e.failingSince) >= d.cfg.DisableAfter {
		disable = ReasonFailing(d.cfg.DisableAfter)
	}
	e.tailLocked(dl, dl.Attempts)
	e.src.recordLocked(dl)
	disabled := disable != "" && e.disableLocked(disable, now)
	wake = e.needsRunLocked()
	e.mu.Unlock()
	if settle != nil {
		if err := settle(); err != nil && e.ctx.Err() == nil {
			d.cfg.Logger.Warn("cannot settle a queued delivery", "webhook", e.id, "delivery", dl.ID, "err", err)
		}
	}
	if disabled {
		e.persistDisabled(disable, now)
	}
	return wake
}

// finalLocked books a delivery's final outcome once: counts, W (unless
// the delivery was away: a queued one a manual attempt settled), and the
// copy of the event released.
func (e *endpoint) finalLocked(dl *delivery, now time.Time, ok bool) {
	if dl.entry == nil {
		dl.rec = store.Record{}
	}
	if dl.final {
		return
	}
	dl.final = true
	if !dl.away {
		e.inSystem--
		e.win.finish(now, now.Sub(dl.storedAt))
	}
	if ok {
		e.succeeded++
		e.src.countLocked(true)
		e.d.metrics.deliveries.WithLabelValues("succeeded").Inc()
	} else {
		e.failed++
		e.src.countLocked(false)
		e.d.metrics.deliveries.WithLabelValues("failed").Inc()
		// No loops: a failure delivering an eventgate.delivery.failed
		// event records no further event.
		if dl.typ != gateway.TypeDeliveryFailed {
			e.opDeliveryFailedLocked(dl)
		}
	}
}

// retryDue is called by the heap's goroutine when ent falls due.
func (e *endpoint) retryDue(ent *retryEntry) {
	e.mu.Lock()
	dl := ent.dlv
	if dl.entry == ent {
		dl.entry = nil
	}
	switch {
	case e.deleted:
	case dl.Status != store.DeliveryRetrying || dl.busy:
		// A manual attempt succeeded, or is running and will decide.
		e.retrying--
		if dl.Status != store.DeliveryRetrying {
			dl.rec = store.Record{}
		}
	default:
		dl.busy = true
		e.due = append(e.due, dueItem{dl: dl})
	}
	e.mu.Unlock()
	if ent.soon {
		e.soon.Add(-1)
	}
	e.poke()
}
