package dispatch

// The Dispatcher's webhook API: registering, changing, listing and
// removing webhooks, their deliveries and manual retries. Changes are
// validated, stored (store.Webhooks) and handed to the webhook's
// endpoint, whose goroutine acts on them.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// CheckURL reports whether raw may be a webhook URL: absolute http(s),
// and, unless private targets are allowed, a host that neither is nor
// resolves to a loopback, private, link-local, unspecified or multicast
// address. Its errors are *TargetError.
func (d *Dispatcher) CheckURL(ctx context.Context, raw string) error {
	return checkURL(ctx, raw, d.cfg.AllowPrivateTargets, d.cfg.Lookup)
}

// Create registers w: it assigns ID ("wh_" + ULID), CreatedAt and
// UpdatedAt, and a secret when w.Secret is empty, and returns the stored
// webhook (secret included). Delivery starts with events stored after this
// call; with w.Handshake, only once the endpoint has accepted the
// validation handshake (AwaitingHandshake until then). It fails with a
// *TargetError for a refused URL, and with an error for invalid patterns,
// secret, headers (a *HeaderError) or rate limit (the api validates those
// first).
func (d *Dispatcher) Create(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	if err := d.CheckURL(ctx, w.URL); err != nil {
		return store.Webhook{}, err
	}
	if err := CheckRateLimit(w.RateLimit); err != nil {
		return store.Webhook{}, err
	}
	if len(w.Types) == 0 {
		w.Types = []string{">"}
	}
	d.mu.Lock()
	full := len(d.endpoints) >= d.cfg.MaxWebhooks
	d.mu.Unlock()
	if full {
		return store.Webhook{}, fmt.Errorf("%w: %d webhooks", ErrTooManyWebhooks, d.cfg.MaxWebhooks)
	}
	w.AwaitingHandshake = w.Handshake
	w.PreviousSecret, w.PreviousExpires = "", time.Time{}
	if w.Secret == "" {
		w.Secret = signature.NewSecret()
	}
	now := time.Now().UTC()
	w.ID = gateway.NewID("wh_", now)
	w.CreatedAt, w.UpdatedAt = now, now
	if w.Enabled {
		w.DisabledReason = ""
	} else if w.DisabledReason == "" {
		w.DisabledReason = ReasonByRequest
	}
	ep, err := d.loadEndpoint(ctx, w, d.log.Bounds().Newest)
	if err != nil {
		return store.Webhook{}, err
	}
	// In the map before the registry has it, so that a watcher reporting
	// the new webhook finds it there.
	d.mu.Lock()
	d.endpoints[w.ID] = ep
	d.mu.Unlock()
	if err := d.hooks.Create(ctx, w); err != nil {
		d.mu.Lock()
		delete(d.endpoints, w.ID)
		d.mu.Unlock()
		ep.cancel()
		if d.queues != nil {
			_ = d.queues.DeleteQueue(ctx, w.ID)
		}
		return store.Webhook{}, err
	}
	d.mu.Lock()
	if d.endpoints[w.ID] == ep {
		d.startLocked(ep)
	}
	d.mu.Unlock()
	return w, nil
}

// Reasons a webhook is disabled, kept in Webhook.DisabledReason.
const (
	ReasonByRequest = "disabled by request"
	ReasonGone      = "endpoint answered 410 Gone"
)

// Get returns the webhook stored under id, or an error wrapping
// store.ErrNotFound.
func (d *Dispatcher) Get(ctx context.Context, id string) (store.Webhook, error) {
	// The pending disable is read before the registry: should it be
	// stored meanwhile, the registry read may still miss it.
	var p *pendingDisable
	if ep, err := d.local(id); err == nil {
		p = ep.pendingDisable()
	}
	w, err := d.hooks.Get(ctx, id)
	if err == nil {
		p.overlay(&w)
	}
	return w, err
}

// List returns every webhook, oldest first.
func (d *Dispatcher) List(ctx context.Context) ([]store.Webhook, error) {
	pending := map[string]*pendingDisable{}
	d.mu.Lock()
	eps := slices.Collect(maps.Values(d.endpoints))
	d.mu.Unlock()
	for _, ep := range eps {
		if p := ep.pendingDisable(); p != nil {
			pending[ep.id] = p
		}
	}
	ws, err := d.hooks.List(ctx)
	for i := range ws {
		pending[ws[i].ID].overlay(&ws[i])
	}
	return ws, err
}

// Stats returns the live figures of webhook id (zero for an unknown id).
func (d *Dispatcher) Stats(id string) Stats {
	ep, err := d.local(id)
	if err != nil {
		return Stats{}
	}
	return ep.stats()
}

// WebhookUpdate is a partial update: nil fields stay as they are.
type WebhookUpdate struct {
	URL         *string
	Types       []string // nil: unchanged
	Description *string
	Enabled     *bool
	Headers     *map[string]string // replaced as a whole
	RateLimit   *float64
	Handshake   *bool
	// ResumeNewest, when this update re-enables a disabled webhook, moves
	// its cursor to the newest event instead of continuing where it stood.
	ResumeNewest bool
}

// Resume says where a re-enabled webhook continues.
type Resume struct {
	From  string // "cursor" or "newest"
	After uint64 // delivery continues with events after this seq
}

// Update applies u to webhook id and returns the stored result, and, when
// u re-enabled it, where delivery resumes (nil otherwise). Changes take
// effect at once: a disabled webhook starts no new attempt (its pending
// deliveries and retries are held, not dropped); new types apply to events
// taken from then on. A webhook with Handshake awaits a new handshake when
// its URL changes, when Handshake is switched on and when it is
// re-enabled. Errors: store.ErrNotFound (wrapped), a *TargetError for a
// refused URL, a *HeaderError, or an error for invalid patterns or rate.
func (d *Dispatcher) Update(ctx context.Context, id string, u WebhookUpdate) (store.Webhook, *Resume, error) {
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return store.Webhook{}, nil, err
	}
	if u.URL != nil {
		if err := d.CheckURL(ctx, *u.URL); err != nil {
			return store.Webhook{}, nil, err
		}
	}
	if u.Types != nil {
		if _, err := store.ParseFilter(u.Types); err != nil {
			return store.Webhook{}, nil, err
		}
	}
	if u.Headers != nil {
		if errs := CheckHeaders(*u.Headers); len(errs) > 0 {
			return store.Webhook{}, nil, errs[0]
		}
	}
	if u.RateLimit != nil {
		if err := CheckRateLimit(*u.RateLimit); err != nil {
			return store.Webhook{}, nil, err
		}
	}
	ep.applying.Lock()
	defer ep.applying.Unlock()
	reenabled := false
	w, err := d.hooks.Update(ctx, id, func(w *store.Webhook) error {
		reenabled = false // fn may run again: depend on w only
		rehandshake := false
		if u.URL != nil {
			rehandshake = *u.URL != w.URL
			w.URL = *u.URL
		}
		if u.Types != nil {
			w.Types = slices.Clone(u.Types)
		}
		if u.Description != nil {
			w.Description = *u.Description
		}
		if u.Headers != nil {
			w.Headers = maps.Clone(*u.Headers)
		}
		if u.RateLimit != nil {
			w.RateLimit = *u.RateLimit
		}
		if u.Handshake != nil {
			rehandshake = rehandshake || (*u.Handshake && !w.Handshake)
			w.Handshake = *u.Handshake
		}
		if u.Enabled != nil && *u.Enabled != w.Enabled {
			w.Enabled = *u.Enabled
			reenabled = w.Enabled
			if w.Enabled {
				w.DisabledReason = ""
			} else {
				w.DisabledReason = ReasonByRequest
			}
		}
		w.AwaitingHandshake = w.Handshake && (w.AwaitingHandshake || rehandshake || reenabled)
		w.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return store.Webhook{}, nil, err
	}
	after, err := ep.apply(w, reenabled && u.ResumeNewest)
	if err != nil {
		return store.Webhook{}, nil, err
	}
	if after, err = ep.src.apply(ctx, w, u.Types != nil, reenabled, u.ResumeNewest, after); err != nil {
		return store.Webhook{}, nil, err
	}
	if !reenabled {
		return w, nil, nil
	}
	r := &Resume{From: "cursor", After: after}
	if u.ResumeNewest {
		r.From = "newest"
	}
	d.cfg.Logger.Info("webhook re-enabled", "webhook", id, "resume", r.From, "after", after)
	return w, r, nil
}

// Delete removes webhook id at once: its pending deliveries and retries
// are dropped, its attempts in flight cancelled and its goroutine stopped.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	if err := d.hooks.Delete(ctx, id); err != nil {
		return err
	}
	d.forget(id)
	if d.queues != nil {
		return d.queues.DeleteQueue(ctx, id)
	}
	return nil
}

// Deliveries returns up to limit deliveries of webhook id, newest first,
// without their attempt histories: only those in status unless it is "",
// and only those older than delivery before unless it is "" (the last id
// of the previous page). Errors: store.ErrNotFound.
func (d *Dispatcher) Deliveries(id string, status store.DeliveryStatus, limit int, before string) ([]store.Delivery, error) {
	ctx, cancel := context.WithTimeout(d.base, 10*time.Second)
	defer cancel()
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	return ep.deliveries(status, limit, before), nil
}

// Delivery returns delivery dlvID of webhook id with its attempt history,
// and the event it carries while the log (or the delivery's own copy)
// still has it (nil after that). Errors: store.ErrNotFound (wrapped) for
// an unknown webhook or delivery.
func (d *Dispatcher) Delivery(ctx context.Context, id, dlvID string) (store.Delivery, []byte, error) {
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return store.Delivery{}, nil, err
	}
	dl, err := ep.src.delivery(ctx, dlvID)
	if err != nil {
		return store.Delivery{}, nil, err
	}
	if dl.EventID == "" { // an overwritten range: no event
		return dl, nil, nil
	}
	ep.mu.Lock()
	var event []byte
	if live := ep.log.find(dlvID); live != nil && live.rec.JSON != nil {
		event = live.rec.JSON
	}
	ep.mu.Unlock()
	if event == nil {
		if rec, err := d.log.Get(ctx, dl.EventSeq); err == nil {
			event = rec.JSON
		}
	}
	return dl, event, nil
}

// Retry schedules an immediate attempt of delivery dlvID of webhook id,
// whatever its status, and returns the delivery as it now stands. The
// attempt keeps the delivery's id and webhook-id; attempts keeps counting.
// If it fails, a retrying delivery keeps its schedule and any other ends
// failed. Errors: store.ErrNotFound for an unknown webhook or delivery, or
// when the event is no longer buffered and the delivery holds no copy.
func (d *Dispatcher) Retry(ctx context.Context, id, dlvID string) (store.Delivery, error) {
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return store.Delivery{}, err
	}
	return ep.retryNow(ctx, dlvID)
}
