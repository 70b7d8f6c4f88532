package natsjs

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Limits are a Log's real limits: its stream's, as the server reported
// them when Open created or updated the stream, and its Appends'.
type Limits struct {
	Stream   string
	Storage  string // "file" or "memory"
	Replicas int
	// MaxMsgs is the log's capacity in events: past it the oldest go.
	MaxMsgs int64
	// MaxBytes is the stream's limit in bytes; -1 means none.
	MaxBytes int64
	// MaxAge drops events older than it; 0 means never.
	MaxAge time.Duration
	// MaxMsgSize is the stream's limit on one event; -1 means the
	// server's max_payload.
	MaxMsgSize int32
	// DuplicateWindow is how long a source+id is remembered.
	DuplicateWindow time.Duration
	// MaxBatch is the largest batch Append takes.
	MaxBatch int
	// MaxPending and MaxPendingBytes bound what Appends queue for the
	// writers.
	MaxPending      int
	MaxPendingBytes int
}

// Limits returns the limits the Log runs with. It is safe for concurrent
// use and makes no call to the server.
func (l *Log) Limits() Limits { return l.limits }

// LogValue makes Limits a group of attributes in a slog line, e.g.
// logger.Info("listening", "store_limits", l.Limits()).
func (x Limits) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("stream", x.Stream),
		slog.String("storage", x.Storage),
		slog.Int("replicas", x.Replicas),
		slog.Int64("max_msgs", x.MaxMsgs),
		slog.Int64("max_bytes", x.MaxBytes),
		slog.Duration("max_age", x.MaxAge),
		slog.Int("max_msg_size", int(x.MaxMsgSize)),
		slog.Duration("duplicate_window", x.DuplicateWindow),
		slog.Int("max_batch", x.MaxBatch),
		slog.Int("max_pending", x.MaxPending),
		slog.Int("max_pending_bytes", x.MaxPendingBytes),
	)
}

// limitsOf combines cfg with the stream's configuration sc.
func limitsOf(cfg Config, sc jetstream.StreamConfig) Limits {
	storage := "file"
	if sc.Storage == jetstream.MemoryStorage {
		storage = "memory"
	}
	return Limits{
		Stream:          sc.Name,
		Storage:         storage,
		Replicas:        sc.Replicas,
		MaxMsgs:         sc.MaxMsgs,
		MaxBytes:        sc.MaxBytes,
		MaxAge:          sc.MaxAge,
		MaxMsgSize:      sc.MaxMsgSize,
		DuplicateWindow: sc.Duplicates,
		MaxBatch:        cfg.MaxBatch,
		MaxPending:      cfg.MaxPending,
		MaxPendingBytes: cfg.MaxPendingBytes,
	}
}
