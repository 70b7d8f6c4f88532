package dispatch

// The webhook registry as the dispatcher follows it: the endpoints this
// gateway runs, found locally or read through from a shared registry, and
// the watch that keeps them in line with changes made elsewhere.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventgate/eventgate/store"
)

// local returns webhook id's endpoint on this gateway, or an error
// wrapping store.ErrNotFound.
func (d *Dispatcher) local(id string) (*endpoint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[id]
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	return ep, nil
}

// endpoint returns webhook id's endpoint. A webhook this gateway does not
// know yet, but the registry has (created through another gateway
// sharing it, before this one's watch caught up), is loaded at once: any
// operation succeeds as soon as the create that returned the id has
// answered. Errors: store.ErrNotFound (wrapped), or the registry's.
func (d *Dispatcher) endpoint(ctx context.Context, id string) (*endpoint, error) {
	ep, err := d.local(id)
	if err == nil {
		return ep, nil
	}
	if _, shared := d.hooks.(store.WebhookWatcher); !shared {
		return nil, err
	}
	w, err := d.hooks.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.install(ctx, w)
}

// install makes and starts the endpoint of w, a webhook new to this
// gateway, and returns it; or returns the one installed meanwhile.
func (d *Dispatcher) install(ctx context.Context, w store.Webhook) (*endpoint, error) {
	ep, err := d.loadEndpoint(ctx, w, d.log.Bounds().Newest)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if had, ok := d.endpoints[w.ID]; ok {
		ep.cancel()
		return had, nil
	}
	if d.phase == phaseStopped {
		ep.cancel()
		return nil, ErrStopped
	}
	d.endpoints[w.ID] = ep
	d.startLocked(ep)
	d.cfg.Logger.Info("webhook loaded from the registry", "webhook", w.ID)
	return ep, nil
}

// forget stops and drops webhook id's endpoint, if there is one.
func (d *Dispatcher) forget(id string) {
	d.mu.Lock()
	ep := d.endpoints[id]
	delete(d.endpoints, id)
	d.mu.Unlock()
	if ep != nil {
		ep.remove()
	}
}

// watch follows the registry's changes (made here or through another
// gateway sharing it) until the dispatcher stops, watching again a second
// after a failure.
func (d *Dispatcher) watch(wt store.WebhookWatcher) {
	for {
		err := wt.Watch(d.base, d.watched)
		if d.base.Err() != nil {
			return
		}
		d.cfg.Logger.Warn("webhook registry watch ended; watching again", "err", err)
		select {
		case <-d.base.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// watched brings webhook id's endpoint in line with the registry: made
// when new, updated when the registry holds a newer revision than the
// endpoint, stopped when deleted.
func (d *Dispatcher) watched(id string) {
	ctx, cancel := context.WithTimeout(d.base, 10*time.Second)
	defer cancel()
	w, err := d.hooks.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		d.forget(id)
		return
	}
	if err != nil {
		d.cfg.Logger.Error("cannot read a changed webhook", "webhook", id, "err", err)
		return
	}
	ep, err := d.local(id)
	if err != nil { // new to this gateway
		if _, err := d.install(ctx, w); err != nil && !errors.Is(err, ErrStopped) {
			d.cfg.Logger.Error("cannot load webhook", "webhook", id, "err", err)
		}
		return
	}
	ep.applying.Lock()
	defer ep.applying.Unlock()
	if w, err = d.hooks.Get(ctx, id); err != nil { // the newest, now that no local change is half-way
		return
	}
	ep.mu.Lock()
	newer := w.Revision > ep.hook.Revision
	types := !slices.Equal(w.Types, ep.hook.Types)
	ep.mu.Unlock()
	if !newer {
		return
	}
	if _, err := ep.apply(w, false); err != nil {
		d.cfg.Logger.Error("cannot apply a changed webhook", "webhook", id, "err", err)
	}
	if _, err := ep.src.apply(ctx, w, types, false, false, 0); err != nil {
		d.cfg.Logger.Error("cannot change a webhook's queue", "webhook", id, "err", err)
	}
}
