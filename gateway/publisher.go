// Package gateway holds eventgate's behaviour: publishing into the log, the
// webhook dispatcher and the stream hub. It knows nothing of HTTP routing,
// WebSocket connections, validation tags or problem documents.
package gateway

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/oklog/ulid/v2"
)

// ReservedPrefix starts the types of the gateway's own operational events.
// Clients may not publish under it.
const ReservedPrefix = "eventgate."

// ErrDraining is returned by Publish once Shutdown has begun.
var ErrDraining = errors.New("gateway is shutting down")

// Publisher fills in event defaults and appends to the log. Once Shutdown
// has begun it refuses new batches, so the log's newest seq is final.
// Safe for concurrent use.
type Publisher struct {
	log store.Log
	now func() time.Time

	mu       sync.RWMutex // held for reading by each Publish, for writing by Shutdown
	draining bool
}

// NewPublisher returns a Publisher appending to log.
func NewPublisher(log store.Log) *Publisher {
	return &Publisher{log: log, now: time.Now}
}

// NewEventID returns a new sortable unique event id: "evt_" + a ULID.
func NewEventID() string { return "evt_" + ulid.Make().String() }

// IsReserved reports whether typ lies under ReservedPrefix.
func IsReserved(typ string) bool { return strings.HasPrefix(typ, ReservedPrefix) }

// Publish fills in defaults (id, source "/", time now in UTC) and appends
// batch atomically, appending one result per event to out. It fails with
// ErrDraining after Shutdown, and with the log's errors.
func (p *Publisher) Publish(ctx context.Context, batch []store.Event, out []store.Appended) ([]store.Appended, error) {
	now := p.now().UTC()
	for i := range batch {
		e := &batch[i]
		if e.ID == "" {
			e.ID = NewEventID()
		}
		if e.Source == "" {
			e.Source = "/"
		}
		if e.Time.IsZero() {
			e.Time = now
		}
		if err := e.Encode(); err != nil { // outside every lock
			return out, err
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.draining {
		return out, ErrDraining
	}
	return p.log.Append(ctx, batch, out)
}

// Draining reports whether Shutdown has begun.
func (p *Publisher) Draining() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.draining
}

// Shutdown stops intake and returns once every Publish in progress has
// finished, so that Log().Bounds().Newest is the last accepted event.
// Idempotent.
func (p *Publisher) Shutdown(context.Context) error {
	p.mu.Lock()
	p.draining = true
	p.mu.Unlock()
	return nil
}

// Log returns the log p appends to.
func (p *Publisher) Log() store.Log { return p.log }
