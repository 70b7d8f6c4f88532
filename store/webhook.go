package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrExists is returned by Webhooks.Create when the id is already taken.
var ErrExists = errors.New("already exists")

// Webhook is a registered endpoint: where matching events are delivered
// and how they are signed. The registry stores it as is; behaviour lives
// in dispatch.Dispatcher.
type Webhook struct {
	ID          string
	URL         string
	Types       []string // type patterns; an event matching any is delivered
	Secret      string   // "whsec_…"; shown to clients only when created
	Description string
	Enabled     bool
	// DisabledReason says why Enabled is false ("disabled by request",
	// "endpoint answered 410 Gone", …); empty while enabled.
	DisabledReason string
	// PreviousSecret still signs, after Secret, until PreviousExpires
	// (a rotation's grace period); "" when there is none.
	PreviousSecret  string
	PreviousExpires time.Time
	// Headers are extra request headers sent with every delivery.
	Headers map[string]string
	// RateLimit caps attempts per second; 0 means no limit.
	RateLimit float64
	// Handshake asks for the CloudEvents validation handshake before
	// deliveries start; AwaitingHandshake is true until it has passed.
	Handshake         bool
	AwaitingHandshake bool
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Revision is set by the registry each time it stores the webhook and
	// grows with every store (a shared registry's revision, e.g. the
	// JetStream key-value revision); the value callers pass is ignored.
	// It tells a newer state from an older one arriving late.
	Revision uint64
}

// Clone returns a copy of w that shares no slice or map with it.
func (w Webhook) Clone() Webhook {
	w.Types = slices.Clone(w.Types)
	w.Headers = maps.Clone(w.Headers)
	return w
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryPending: no attempt has finished yet.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryRetrying: an attempt failed and another is due.
	DeliveryRetrying DeliveryStatus = "retrying"
	// DeliverySucceeded: an attempt got a 2xx answer.
	DeliverySucceeded DeliveryStatus = "succeeded"
	// DeliveryFailed: the attempts are used up, or the event was
	// overwritten before the endpoint could take it.
	DeliveryFailed DeliveryStatus = "failed"
)

// Valid reports whether s is one of the four statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryPending, DeliveryRetrying, DeliverySucceeded, DeliveryFailed:
		return true
	}
	return false
}

// Delivery is one event's delivery to one webhook, as the delivery log
// shows it. Zero fields have not happened yet (no attempt, no status code,
// no next attempt).
type Delivery struct {
	ID             string
	WebhookID      string
	EventSeq       uint64
	EventID        string // "" when the event was overwritten before it was taken
	Status         DeliveryStatus
	Attempts       int
	LastStatusCode int    // 0 when no answer was received
	LastError      string // "" after a success or before any attempt
	LastAttemptAt  time.Time
	NextAttemptAt  time.Time
	Duration       time.Duration // of the last attempt
	CreatedAt      time.Time
	// Origin is OriginReplay for a delivery made by a replay, "" (live)
	// otherwise.
	Origin string `json:",omitempty"`
	// History holds the delivery's attempts, oldest first: at most
	// MaxAttemptHistory (the first and the newest), their response bodies
	// cut to MaxResponseBody bytes. Lists leave it out.
	History []AttemptRecord `json:",omitempty"`
}

// Delivery origins and attempt triggers.
const (
	OriginReplay = "replay" // the delivery was made by POST …/replay

	TriggerScheduled = "scheduled" // the first attempt of an event taken live
	TriggerRetry     = "retry"     // a retry on the schedule
	TriggerManual    = "manual"    // asked for by POST …/retry
	TriggerReplay    = "replay"    // the first attempt of a replayed event
)

// Bounds of a delivery's attempt history.
const (
	// MaxAttemptHistory is how many attempts a delivery keeps: the first
	// and the newest.
	MaxAttemptHistory = 20
	// MaxResponseBody is how much of an answer's body an attempt keeps.
	MaxResponseBody = 4 << 10
)

// AttemptRecord is one attempt of a delivery.
type AttemptRecord struct {
	Start      time.Time
	Duration   time.Duration
	StatusCode int    // 0: no answer
	Error      string // why it failed; "" on success
	Trigger    string // TriggerScheduled, TriggerRetry, TriggerManual or TriggerReplay
	// Response is the start of the answer's body (MaxResponseBody bytes at
	// most, cut at a character boundary), ContentType its Content-Type.
	Response    string `json:",omitempty"`
	ContentType string `json:",omitempty"`
}

// AddAttempt appends a to d's history, keeping the first attempt and the
// newest ones up to MaxAttemptHistory.
func (d *Delivery) AddAttempt(a AttemptRecord) {
	if len(d.History) >= MaxAttemptHistory {
		copy(d.History[1:], d.History[2:])
		d.History = d.History[:len(d.History)-1]
	}
	d.History = append(d.History, a)
}

// Webhooks is the webhook registry contract. Implementations are safe for
// concurrent use and return copies: callers may keep and modify what they
// get. Get, Update and Delete return ErrNotFound (possibly wrapped) for an
// unknown id; Create returns ErrExists for a taken one.
type Webhooks interface {
	// Create stores w under w.ID.
	Create(ctx context.Context, w Webhook) error
	// Get returns the webhook stored under id.
	Get(ctx context.Context, id string) (Webhook, error)
	// List returns every webhook, oldest first (by CreatedAt, then ID).
	List(ctx context.Context) ([]Webhook, error)
	// Update applies fn to the stored webhook atomically and stores the
	// result unless fn fails; it returns the stored value. fn must not
	// change ID and must not block; it may be called more than once (a
	// shared registry retries it when another writer got there first), so
	// it must depend on its argument only.
	Update(ctx context.Context, id string, fn func(*Webhook) error) (Webhook, error)
	// Delete removes the webhook.
	Delete(ctx context.Context, id string) error
}

// WebhookWatcher is implemented by registries that report changes,
// including those made through other gateways sharing the registry.
type WebhookWatcher interface {
	// Watch calls fn with the id of every webhook stored when it starts,
	// then with the id of each webhook created, updated or deleted after
	// that, within about a second. Calls may repeat an id or stand for
	// several changes of it; fn reads the current state with Get (a
	// deleted one answers ErrNotFound). fn runs on Watch's goroutine, one
	// call at a time, and must not call Watch. Watch blocks until ctx ends
	// and then returns ctx's error; it returns another error when it
	// cannot go on (the caller may call it again).
	Watch(ctx context.Context, fn func(id string)) error
}

// MemWebhooks is a Webhooks registry held in memory. The zero value is
// empty and ready to use; it is safe for concurrent use.
type MemWebhooks struct {
	mu       sync.RWMutex
	hooks    map[string]Webhook
	rev      uint64
	watchers map[*memWatcher]struct{}
}

// memWatcher is one Watch call: the ids changed since fn last ran (a set,
// so it is bounded by the number of webhooks) and a 1-slot wake-up.
type memWatcher struct {
	mu      sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}
}

func (w *memWatcher) add(id string) {
	w.mu.Lock()
	w.pending[id] = struct{}{}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// changedLocked tells every watcher that id changed; m.mu is held.
func (m *MemWebhooks) changedLocked(id string) {
	for w := range m.watchers {
		w.add(id)
	}
}

// Watch implements WebhookWatcher.
func (m *MemWebhooks) Watch(ctx context.Context, fn func(id string)) error {
	w := &memWatcher{pending: make(map[string]struct{}), wake: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.watchers == nil {
		m.watchers = make(map[*memWatcher]struct{})
	}
	m.watchers[w] = struct{}{}
	for id := range m.hooks {
		w.add(id)
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	w.add("") // run once at start even when empty; "" is skipped
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		}
		w.mu.Lock()
		ids := slices.Sorted(maps.Keys(w.pending))
		clear(w.pending)
		w.mu.Unlock()
		for _, id := range ids {
			if id != "" && ctx.Err() == nil {
				fn(id)
			}
		}
	}
}

// Create implements Webhooks.
func (m *MemWebhooks) Create(_ context.Context, w Webhook) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.hooks[w.ID]; ok {
		return fmt.Errorf("webhook %s: %w", w.ID, ErrExists)
	}
	if m.hooks == nil {
		m.hooks = make(map[string]Webhook)
	}
	m.rev++
	w.Revision = m.rev
	m.hooks[w.ID] = w.Clone()
	m.changedLocked(w.ID)
	return nil
}

// Get implements Webhooks.
func (m *MemWebhooks) Get(_ context.Context, id string) (Webhook, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	w, ok := m.hooks[id]
	if !ok {
		return Webhook{}, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	return w.Clone(), nil
}

// List implements Webhooks.
func (m *MemWebhooks) List(context.Context) ([]Webhook, error) {
	m.mu.RLock()
	out := make([]Webhook, 0, len(m.hooks))
	for _, w := range m.hooks {
		out = append(out, w.Clone())
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Webhook) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Update implements Webhooks.
func (m *MemWebhooks) Update(_ context.Context, id string, fn func(*Webhook) error) (Webhook, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.hooks[id]
	if !ok {
		return Webhook{}, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	w = w.Clone()
	if err := fn(&w); err != nil {
		return Webhook{}, err
	}
	w.ID = id
	m.rev++
	w.Revision = m.rev
	m.hooks[id] = w
	m.changedLocked(id)
	return w.Clone(), nil
}

// Delete implements Webhooks.
func (m *MemWebhooks) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.hooks[id]; !ok {
		return fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	delete(m.hooks, id)
	m.changedLocked(id)
	return nil
}

var (
	_ Webhooks       = (*MemWebhooks)(nil)
	_ WebhookWatcher = (*MemWebhooks)(nil)
)
