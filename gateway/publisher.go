// Package gateway is the core every reader of the log shares: the
// Publisher, the one way into the log, and the Hub, which serves each
// WebSocket or SSE stream as a cursor over it. It knows nothing of HTTP
// routing, WebSocket connections, validation tags or problem documents;
// webhook delivery lives in package dispatch.
package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
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

// NewEventID returns a new unique event id: "evt_" + a ULID.
func NewEventID() string { return NewID("evt_", time.Now()) }

// NewID returns prefix + a ULID: the time t in milliseconds, then 80 random
// bits from math/rand/v2's per-thread ChaCha8 source, built in one
// allocation. (ulid.Make takes a global lock and allocates twice; ids need
// not be monotonic within a millisecond: the seq orders events.)
func NewID(prefix string, t time.Time) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t)) // fails only after the year 10889
	binary.BigEndian.PutUint64(id[6:14], rand.Uint64())
	binary.BigEndian.PutUint16(id[14:], uint16(rand.Uint32()))
	var buf [8 + ulid.EncodedSize]byte
	if len(prefix) > 8 {
		return prefix + id.String()
	}
	n := copy(buf[:], prefix)
	_ = id.MarshalTextTo(buf[n : n+ulid.EncodedSize]) // the size it needs
	return string(buf[:n+ulid.EncodedSize])
}

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
			e.ID = NewID("evt_", now)
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

// OperationalSource is the source of every event the gateway records
// about itself.
const OperationalSource = "/eventgate"

// Operational event types.
const (
	TypeWebhookDisabled = ReservedPrefix + "webhook.disabled"
	TypeDeliveryFailed  = ReservedPrefix + "delivery.failed"
	TypeStreamDropped   = ReservedPrefix + "stream.dropped"
)

// PublishOperational appends one event the gateway records about itself:
// typ must lie under ReservedPrefix; source is OperationalSource; subject
// names what the event is about (a webhook id, a stream client); data is
// marshalled as JSON. It fails like Publish (ErrDraining after Shutdown)
// and for data that does not marshal. It never waits for readers.
func (p *Publisher) PublishOperational(ctx context.Context, typ, subject string, data any) (store.Appended, error) {
	if !IsReserved(typ) {
		return store.Appended{}, fmt.Errorf("operational event type %q is not under %q", typ, ReservedPrefix)
	}
	raw, err := store.MarshalJSON(data)
	if err != nil {
		return store.Appended{}, fmt.Errorf("operational event %s: %w", typ, err)
	}
	var out [1]store.Appended
	res, err := p.Publish(ctx, []store.Event{{Type: typ, Source: OperationalSource, Subject: subject, Data: raw}}, out[:0])
	if err != nil {
		return store.Appended{}, err
	}
	return res[0], nil
}

// RecordStreamDrop appends eventgate.stream.dropped for a stream client
// cut off for being slow; pass it as HubConfig.OnDrop (wrapped to log its
// error). The data names the client and how far behind it was.
func (p *Publisher) RecordStreamDrop(ctx context.Context, d Drop) error {
	_, err := p.PublishOperational(ctx, TypeStreamDropped, d.Remote, map[string]any{
		"transport": d.Transport, "remote": d.Remote, "types": d.Types,
		"last_seq": d.LastSeq, "lag": d.Lag, "queue": d.Queue,
		"reason": fmt.Sprintf("more than %d events behind", d.Queue),
	})
	return err
}
