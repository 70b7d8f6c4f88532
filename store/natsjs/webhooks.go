package natsjs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go/jetstream"
)

// Webhooks is a store.Webhooks registry in a JetStream key-value bucket
// (one key per webhook id, its JSON as the value, history 1), shared by
// every gateway on the same NATS. It implements store.WebhookWatcher with
// a key-value watcher. Safe for concurrent use. The bucket holds the
// webhooks' secrets: restrict it to the gateways' NATS account.
type Webhooks struct {
	kv      jetstream.KeyValue
	timeout time.Duration
	seal    *sealer // nil: secrets and header values stored in clear
}

// maxUpdateTries bounds Update's optimistic retries when other writers
// keep winning.
const maxUpdateTries = 20

// OpenWebhooks opens (creating it when missing) the registry's bucket,
// Config.Bucket, on the log's connection, with the log's storage and
// replicas. With Config.EncryptionKey, secrets and custom header values
// are stored sealed (see hookRecord); without it they are stored in
// clear, and sealed ones cannot be read (ErrSealed).
func (l *Log) OpenWebhooks(ctx context.Context) (*Webhooks, error) {
	seal, err := newSealer(l.cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	storage := jetstream.FileStorage
	if l.cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.cfg.Bucket,
		Description: "eventgate webhooks",
		History:     1,
		Storage:     storage,
		Replicas:    l.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natsjs: webhooks bucket %s: %w", l.cfg.Bucket, err)
	}
	return &Webhooks{kv: kv, timeout: l.cfg.Timeout, seal: seal}, nil
}

func (r *Webhooks) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.timeout)
}

// notFound maps the bucket's "no such key" (and a key that cannot be one)
// to store.ErrNotFound.
func notFound(id string, err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey) {
		return fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("natsjs: webhook %s: %w", id, err)
}

func (r *Webhooks) decodeHook(e jetstream.KeyValueEntry) (store.Webhook, error) {
	w, err := r.seal.decode(e.Key(), e.Value())
	if err != nil {
		return store.Webhook{}, err
	}
	w.Revision = e.Revision()
	return w, nil
}

func (r *Webhooks) encodeHook(w store.Webhook) []byte { return r.seal.encode(w) }

// Create implements store.Webhooks.
func (r *Webhooks) Create(ctx context.Context, w store.Webhook) error {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	if _, err := r.kv.Create(ctx, w.ID, r.encodeHook(w)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("webhook %s: %w", w.ID, store.ErrExists)
		}
		return fmt.Errorf("natsjs: create webhook %s: %w", w.ID, err)
	}
	return nil
}

// Get implements store.Webhooks.
func (r *Webhooks) Get(ctx context.Context, id string) (store.Webhook, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	e, err := r.kv.Get(ctx, id)
	if err != nil {
		return store.Webhook{}, notFound(id, err)
	}
	return r.decodeHook(e)
}

// List implements store.Webhooks: one watcher reads every current value.
func (r *Webhooks) List(ctx context.Context) ([]store.Webhook, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	wt, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("natsjs: list webhooks: %w", err)
	}
	defer func() { _ = wt.Stop() }()
	var out []store.Webhook
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("natsjs: list webhooks: %w", ctx.Err())
		case e, ok := <-wt.Updates():
			if !ok {
				return nil, errors.New("natsjs: list webhooks: watcher closed")
			}
			if e == nil { // every current value has been sent
				slices.SortFunc(out, func(a, b store.Webhook) int {
					if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
						return c
					}
					return cmp.Compare(a.ID, b.ID)
				})
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			w, err := r.decodeHook(e)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
	}
}

// Update implements store.Webhooks optimistically: read, apply fn, write
// if the key's revision is still the one read, else start again.
func (r *Webhooks) Update(ctx context.Context, id string, fn func(*store.Webhook) error) (store.Webhook, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	for range maxUpdateTries {
		e, err := r.kv.Get(ctx, id)
		if err != nil {
			return store.Webhook{}, notFound(id, err)
		}
		w, err := r.decodeHook(e)
		if err != nil {
			return store.Webhook{}, err
		}
		if err := fn(&w); err != nil {
			return store.Webhook{}, err
		}
		w.ID = id
		rev, err := r.kv.Update(ctx, id, r.encodeHook(w), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue // another writer won: read again
		}
		if err != nil {
			return store.Webhook{}, fmt.Errorf("natsjs: update webhook %s: %w", id, err)
		}
		w.Revision = rev
		return w, nil
	}
	return store.Webhook{}, fmt.Errorf("natsjs: update webhook %s: %d conflicting writers in a row", id, maxUpdateTries)
}

// Delete implements store.Webhooks.
func (r *Webhooks) Delete(ctx context.Context, id string) error {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	for range maxUpdateTries {
		e, err := r.kv.Get(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		err = r.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision()))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("natsjs: delete webhook %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("natsjs: delete webhook %s: %d conflicting writers in a row", id, maxUpdateTries)
}

// Watch implements store.WebhookWatcher with a key-value watcher (an
// ordered consumer, which resumes on another server when its own goes).
func (r *Webhooks) Watch(ctx context.Context, fn func(id string)) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wt, err := r.kv.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("natsjs: watch webhooks: %w", err)
	}
	defer func() { _ = wt.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-wt.Updates():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("natsjs: watch webhooks: watcher closed")
			}
			if e != nil {
				fn(e.Key())
			}
		}
	}
}

var (
	_ store.Webhooks       = (*Webhooks)(nil)
	_ store.WebhookWatcher = (*Webhooks)(nil)
)
