package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// ReasonFailing is the disabled_reason of a webhook disabled after
// --disable-after of continuous failure.
func ReasonFailing(after time.Duration) string {
	return fmt.Sprintf("every attempt failed for %s", after)
}

// Defaults and bounds of a secret rotation's grace period.
const (
	DefaultGrace     = 24 * time.Hour
	MaxRotationGrace = 30 * 24 * time.Hour
)

// errSkip tells a registry Update that nothing needs storing.
var errSkip = errors.New("skip")

// RotateSecret gives webhook id a new secret and returns it with the time
// the previous secret stops signing (now + grace). Until then both sign,
// new first; a rotation during a grace period replaces the earlier
// previous secret at once. grace must be within 0..MaxRotationGrace.
// Errors: store.ErrNotFound (wrapped), or an error for a bad grace.
func (d *Dispatcher) RotateSecret(ctx context.Context, id string, grace time.Duration) (string, time.Time, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return "", time.Time{}, fmt.Errorf("grace %s is outside 0..%s", grace, MaxRotationGrace)
	}
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	ep.applying.Lock()
	defer ep.applying.Unlock()
	secret := signature.NewSecret()
	now := time.Now()
	expires := now.Add(grace)
	w, err := d.hooks.Update(ctx, id, func(w *store.Webhook) error {
		w.PreviousSecret, w.PreviousExpires = w.Secret, expires
		if grace == 0 {
			w.PreviousSecret, w.PreviousExpires = "", time.Time{}
		}
		w.Secret, w.UpdatedAt = secret, now.UTC()
		return nil
	})
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := ep.apply(w, false); err != nil {
		return "", time.Time{}, err
	}
	d.metrics.rotations.Inc()
	d.cfg.Logger.Info("webhook secret rotated", "webhook", id, "grace", grace.String())
	return secret, expires.UTC(), nil
}

// expireSecretLocked forgets the previous secret once its grace has
// passed: it stops signing at once, and the registry's copy is cleared by
// an operation flushed outside the lock.
func (e *endpoint) expireSecretLocked(now time.Time) {
	if e.prevUntil.IsZero() || now.Before(e.prevUntil) {
		return
	}
	e.secrets, e.prevUntil = e.secrets[:1:1], time.Time{}
	prev := e.hook.PreviousSecret
	e.hook.PreviousSecret, e.hook.PreviousExpires = "", time.Time{}
	e.ops.forget = append(e.ops.forget, forgetSecret{secret: prev, at: now})
}

// disableLocked disables the endpoint with reason; it reports false when
// it was disabled already. The caller then calls persistDisabled outside
// the lock.
func (e *endpoint) disableLocked(reason string, now time.Time) bool {
	if !e.hook.Enabled {
		return false
	}
	e.hook.Enabled, e.hook.DisabledReason = false, reason
	e.failingSince = time.Time{}
	e.hs.reset()
	e.disabling = &pendingDisable{reason: reason, at: now}
	return true
}

// pendingDisable is a disable an endpoint decided, on its way to the
// registry.
type pendingDisable struct {
	reason string
	at     time.Time
}

// pendingDisable returns the disable this endpoint decided and has not
// stored yet, or nil.
func (e *endpoint) pendingDisable() *pendingDisable {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disabling
}

// overlay shows on w, as read from the registry, the disable p (nil:
// none), unless w was updated after it: the delivery whose outcome
// disabled the webhook is listed at once, and the webhook must not read
// as enabled beside it while the registry stores the disable.
func (p *pendingDisable) overlay(w *store.Webhook) {
	if p != nil && w.Enabled && !w.UpdatedAt.After(p.at) {
		w.Enabled, w.DisabledReason, w.UpdatedAt = false, p.reason, p.at.UTC()
	}
}

// persistDisabled stores a disable decided by the endpoint, unless the
// webhook was updated after it (a later PATCH wins), and records
// eventgate.webhook.disabled. Called by the goroutine that finished the
// attempt (see finish), no lock held.
func (e *endpoint) persistDisabled(reason string, at time.Time) {
	d := e.d
	d.metrics.disabled.WithLabelValues(disableLabel(reason)).Inc()
	d.cfg.Logger.Warn("webhook disabled", "webhook", e.id, "reason", reason)
	_, err := d.hooks.Update(e.ctx, e.id, func(w *store.Webhook) error {
		if w.UpdatedAt.After(at) {
			return errSkip
		}
		w.Enabled, w.DisabledReason, w.UpdatedAt = false, reason, at.UTC()
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && e.ctx.Err() == nil {
		d.cfg.Logger.Error("cannot store the disabled webhook", "webhook", e.id, "err", err)
	}
	e.mu.Lock()
	if e.disabling != nil && e.disabling.at.Equal(at) {
		e.disabling = nil // stored, or a later update won: the registry says
	}
	e.mu.Unlock()
	d.publishOp(e.ctx, gateway.TypeWebhookDisabled, e.id, WebhookDisabledData{WebhookID: e.id, Reason: reason})
}

func disableLabel(reason string) string {
	switch {
	case reason == ReasonGone:
		return "gone"
	case len(reason) >= len(reasonHandshake) && reason[:len(reasonHandshake)] == reasonHandshake:
		return "handshake"
	default:
		return "failing"
	}
}

// WebhookDisabledData is the data of an eventgate.webhook.disabled event.
type WebhookDisabledData struct {
	WebhookID string `json:"webhook_id"`
	Reason    string `json:"reason"`
}

// DeliveryFailedData is the data of an eventgate.delivery.failed event:
// the delivery as it ended. EventID is null for an overwritten range
// (EventSeq is then its first seq), LastStatusCode when no answer came.
type DeliveryFailedData struct {
	WebhookID      string  `json:"webhook_id"`
	DeliveryID     string  `json:"delivery_id"`
	EventSeq       uint64  `json:"event_seq"`
	EventID        *string `json:"event_id"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
}

// pendingOps is the work an endpoint decides under its lock and flushOps
// does outside it: operational events to publish, and previous secrets to
// clear from the registry once their grace has passed.
type pendingOps struct {
	events []opEvent
	forget []forgetSecret
}

// opEvent is an operational event to publish.
type opEvent struct {
	typ  string
	data any
}

// forgetSecret is a previous secret to clear from the registry, unless a
// later rotation replaced it.
type forgetSecret struct {
	secret string
	at     time.Time
}

// opDeliveryFailedLocked queues eventgate.delivery.failed for dl.
func (e *endpoint) opDeliveryFailedLocked(dl *delivery) {
	data := DeliveryFailedData{WebhookID: e.id, DeliveryID: dl.ID, EventSeq: dl.EventSeq, Attempts: dl.Attempts}
	if dl.EventID != "" {
		id := dl.EventID
		data.EventID = &id
	}
	if dl.LastStatusCode != 0 {
		code := dl.LastStatusCode
		data.LastStatusCode = &code
	}
	if dl.LastError != "" {
		msg := dl.LastError
		data.LastError = &msg
	}
	e.ops.events = append(e.ops.events, opEvent{typ: gateway.TypeDeliveryFailed, data: data})
}

// flushOps does the work queued under the lock: the source's shared
// delivery log records and counts, forgotten secrets, operational events.
// It returns when it must run again for counts not yet due (zero: no
// need). Only the endpoint goroutine calls it.
func (e *endpoint) flushOps() (due time.Time) {
	due = e.src.flush(false)
	e.mu.Lock()
	ops := e.ops
	e.ops = pendingOps{}
	e.mu.Unlock()
	for _, f := range ops.forget {
		_, err := e.d.hooks.Update(e.ctx, e.id, func(w *store.Webhook) error {
			if w.PreviousSecret != f.secret || w.PreviousExpires.After(f.at) {
				return errSkip
			}
			w.PreviousSecret, w.PreviousExpires = "", time.Time{}
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) && e.ctx.Err() == nil {
			e.d.cfg.Logger.Error("cannot forget the previous secret", "webhook", e.id, "err", err)
		}
	}
	for _, op := range ops.events {
		e.d.publishOp(e.ctx, op.typ, e.id, op.data)
	}
	return due
}

// publishOp records an operational event about webhook id; failures are
// logged and counted, never fatal.
func (d *Dispatcher) publishOp(ctx context.Context, typ, webhookID string, data any) {
	if _, err := d.pub.PublishOperational(ctx, typ, webhookID, data); err != nil {
		d.metrics.opErrors.Inc()
		level := "error"
		if errors.Is(err, gateway.ErrDraining) || ctx.Err() != nil {
			level = "shutdown"
		}
		d.cfg.Logger.Warn("cannot record an operational event", "type", typ, "webhook", webhookID, "cause", level, "err", err)
		return
	}
	d.metrics.opEvents.WithLabelValues(typ).Inc()
}

// dropSelf removes, in place, the operational events about this very
// webhook (their subject is its id): no loops. Only events under
// gateway.ReservedPrefix are examined, so the common path costs a prefix check.
func (e *endpoint) dropSelf(recs []store.Record) []store.Record {
	out := recs[:0]
	for _, r := range recs {
		if e.isSelf(r) {
			e.d.metrics.selfSkipped.Inc()
			continue
		}
		out = append(out, r)
	}
	clear(recs[len(out):])
	return out
}

// isSelf reports whether r is an operational event about this webhook.
func (e *endpoint) isSelf(r store.Record) bool {
	return gateway.IsReserved(r.Type) && subjectOf(r.JSON) == e.id
}

func subjectOf(event []byte) string {
	var v struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(event, &v)
	return v.Subject
}
