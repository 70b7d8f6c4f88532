package store

import (
	"context"
	"time"
)

// DeliveryQueues is implemented by stores that share each webhook's
// deliveries between every gateway using the store (natsjs: one durable
// JetStream consumer per webhook). The dispatcher then takes a webhook's
// events from its queue instead of reading the log with a cursor of its
// own, so each delivery is attempted by one gateway at a time and
// survives the crash of the gateway attempting it.
type DeliveryQueues interface {
	// OpenQueue returns webhook w's queue, creating it when it does not
	// exist yet: a new queue holds the events stored after cfg.After that
	// match w.Types. Opening an existing queue leaves its position alone
	// and applies w.Types and cfg's limits. Safe for concurrent use by
	// several gateways.
	OpenQueue(ctx context.Context, w Webhook, cfg QueueConfig) (DeliveryQueue, error)
	// DeleteQueue removes webhook id's queue and its delivery records;
	// deleting a missing queue is not an error.
	DeleteQueue(ctx context.Context, id string) error
}

// QueueConfig configures a delivery queue.
type QueueConfig struct {
	// MaxPending bounds the deliveries handed out and not yet settled,
	// over all gateways: in flight plus waiting for a retry.
	MaxPending int
	// AckWait is how long a delivery handed to a gateway may stay
	// unsettled before the queue hands it to another one (the attempting
	// gateway is presumed dead). It must exceed the per-attempt timeout.
	AckWait time.Duration
	// After: a queue created by OpenQueue starts with the events stored
	// after this seq.
	After uint64
}

// DeliveryQueue is one webhook's shared queue of deliveries and its shared
// delivery log. Safe for concurrent use.
type DeliveryQueue interface {
	// Fetch asks for up to n deliveries of at most maxBytes of events in
	// all (0: no bound in bytes; the first delivery always comes, however
	// large). They arrive on the returned channel as the queue hands them
	// out; the channel is closed when n have come, the next would pass
	// maxBytes, or ctx ends (give ctx a deadline of a few seconds: a
	// request left open holds deliveries another gateway could take).
	Fetch(ctx context.Context, n, maxBytes int) (<-chan Queued, error)
	// SetTypes changes which events the queue holds from now on.
	SetTypes(ctx context.Context, types []string) error
	// Reset drops every delivery not yet settled and restarts the queue
	// with the events stored after seq after.
	Reset(ctx context.Context, after uint64) error
	// Position returns the seq of the newest event the queue has handed
	// out: delivery continues after it.
	Position(ctx context.Context) (uint64, error)
	// Record appends ds, each one delivery's latest state, in order, to
	// the shared delivery log without waiting (best effort: a record can
	// be lost with the connection). States recorded together may share
	// the store's work: pass what is noted at once, not one at a time.
	Record(ds ...Delivery)
	// Deliveries returns up to limit deliveries from the shared log, of
	// those updated last, newest first (by CreatedAt), only those in
	// status unless it is "", each its latest state without History.
	Deliveries(ctx context.Context, status DeliveryStatus, limit int) ([]Delivery, error)
	// Count adds to the webhook's shared totals of deliveries that ended
	// succeeded and failed, without waiting (best effort, as Record).
	Count(succeeded, failed uint64)
	// Totals returns the webhook's shared totals: the same on every
	// gateway, kept across restarts.
	Totals(ctx context.Context) (succeeded, failed uint64, err error)
	// Delivery returns the latest recorded state of delivery id, or
	// ErrNotFound.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// Forget settles the queued delivery of event seq wherever it waits,
	// without holding it: a manual attempt delivered it, so the retry
	// waiting in the queue is void and no gateway makes it. Nothing
	// happens when nothing of seq waits. It does not wait for the store.
	Forget(seq uint64) error
}

// Queued is one delivery handed out by a DeliveryQueue. Exactly one of
// Msg's methods settles it; until then no other gateway gets it (unless
// the queue's AckWait passes).
type Queued struct {
	Record
	// Delivered counts the times the queue has handed this event out,
	// this one included (1 the first time).
	Delivered int
	// Pending is how many matching events the queue held, not yet handed
	// out, right after this one (the queue's lag).
	Pending uint64
	Msg     Settler
}

// Settler settles a queued delivery.
type Settler interface {
	// Ack: delivered (or skipped); the queue forgets it.
	Ack() error
	// NakWithDelay: not delivered; the queue hands it out again after
	// delay, to any gateway.
	NakWithDelay(delay time.Duration) error
	// Term: given up; the queue forgets it.
	Term() error
	// InProgress: still held; the queue's AckWait starts again, and the
	// delivery is not counted as handed out again. A no-op (nil) once
	// the delivery is settled.
	InProgress() error
}
