package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Hub defaults for zero HubConfig fields.
const (
	DefaultStreamQueue      = 10000
	DefaultStreamQueueBytes = 16 << 20
	DefaultPingInterval     = 30 * time.Second
	DefaultPongTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxBatch         = 256
	DefaultMaxMessageBytes  = 64 << 10
	DefaultLinger           = 5 * time.Millisecond
	DefaultMaxClients       = 10000
)

// ErrHubClosed is returned by Hub.Open once the hub is shutting down.
var ErrHubClosed = errors.New("stream hub is shutting down")

// ErrHubFull is returned by Hub.Open when HubConfig.MaxClients streams are
// open already.
var ErrHubFull = errors.New("stream hub is full")

// ErrSlowConsumer is returned by Stream.Serve when the client fell more than
// HubConfig.Queue events or HubConfig.QueueBytes bytes behind and was cut
// off.
var ErrSlowConsumer = errors.New("slow consumer")

// ErrExpired is returned by Stream.Serve when the subscription's Expires
// passed and the client was closed with CloseExpired.
var ErrExpired = errors.New("subscription expired")

// HubConfig configures a Hub; zero fields mean the documented defaults.
type HubConfig struct {
	// Queue is how many events a client may lag before it is cut off
	// (--stream-queue, default DefaultStreamQueue). See Stream.Serve for
	// how lag is counted.
	Queue int
	// QueueBytes is how many bytes of events a client may lag before it
	// is cut off (--stream-queue-bytes, default DefaultStreamQueueBytes),
	// counted as the log counts its byte budget. It applies when the log
	// can count the bytes of a range of seqs (store.Ring's Bytes); on
	// other logs only Queue bounds a client.
	QueueBytes int64
	// PingInterval is how long a client may stay idle before the hub checks
	// that it is alive (Sink.Ping); default DefaultPingInterval.
	PingInterval time.Duration
	// PongTimeout bounds each Sink.Ping; default DefaultPongTimeout.
	PongTimeout time.Duration
	// WriteTimeout bounds each Sink.Send, so a stuck peer cannot hold its
	// goroutine; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxBatch is the most events read per Log.Read and sent per Send;
	// default DefaultMaxBatch.
	MaxBatch int
	// MaxMessageBytes stops adding events to one Send once their JSON adds
	// up to it (at least one event is always sent); default
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Linger bounds how long a busy stream holds events to pack them into
	// one message. A stream writes as soon as it has something and its
	// connection is free, and what arrives while it writes goes in its
	// next message; light traffic thus goes out at once, one event per
	// message if that is what there is. A stream that sent more than 16
	// events per Linger over its last Linger or more (3,200 events/s at
	// the default) is busy: after each message it waits out the rest of
	// Linger since that message, so that heavy traffic goes in few, large
	// messages with one wake-up each (see BenchmarkFanout: at 1,000
	// subscribers that cuts p50 latency several-fold). Default
	// DefaultLinger; negative: never wait.
	Linger time.Duration
	// MaxClients caps the streams open at once (--max-streams, default
	// DefaultMaxClients); Open refuses more with ErrHubFull.
	MaxClients int
	// OnDrop, when set, is called once for every client cut off for being
	// slow, from that client's goroutine just before its transport is
	// closed (a close handshake with a peer that is not reading can take
	// seconds). It must not block for long. main wires it to publish
	// eventgate.stream.dropped.
	OnDrop     func(Drop)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Drop describes a client cut off for being slow (HubConfig.OnDrop).
type Drop struct {
	Transport string   // Subscription.Transport: "websocket" or "sse"
	Remote    string   // Subscription.Remote
	Types     []string // the client's patterns
	LastSeq   uint64   // the client may resume with after=LastSeq
	Lag       uint64   // events it was behind when cut off
	Queue     int      // the bound it passed
}

// Hub serves live streams: every client is a cursor over the log, so replay
// and live are one code path and a slow client costs nobody else anything.
//
// A client is served by one goroutine, the only one that uses its Sink:
// the caller's with Stream.Serve (an SSE response, in its HTTP handler), or
// one the hub owns with Stream.Go (a hijacked WebSocket, whose handler has
// returned). The hub tracks every open Stream: Shutdown flushes and closes
// them, and Run returns only after every one has ended.
type Hub struct {
	log     store.Log
	sized   sizedLog // log, when it counts bytes; else nil
	cfg     HubConfig
	metrics *hubMetrics

	mu      sync.Mutex
	streams int           // open streams, guarded by mu
	closing chan struct{} // closed when Shutdown begins or Run's ctx ends
	closed  bool          // closing is closed, guarded by mu
	empty   chan struct{} // closed once closed && streams == 0

	// force ends every stream at once: it cancels each Serve's context,
	// which aborts a write in progress.
	force       context.Context
	forceCancel context.CancelFunc
}

// NewHub returns a Hub reading log. It starts nothing; its metrics are
// registered with cfg.Registerer (when set).
func NewHub(log store.Log, cfg HubConfig) *Hub {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultStreamQueue
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultStreamQueueBytes
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	force, cancel := context.WithCancel(context.Background())
	sized, _ := log.(sizedLog)
	return &Hub{
		log:         log,
		sized:       sized,
		cfg:         cfg,
		metrics:     newHubMetrics(cfg.Registerer),
		closing:     make(chan struct{}),
		empty:       make(chan struct{}),
		force:       force,
		forceCancel: cancel,
	}
}

// Run blocks until ctx ends or Shutdown has begun, then until every stream
// has ended: after Shutdown, until Shutdown's flush is done or ctx ends;
// when ctx ends, streams are closed at once. Run returns nil.
func (h *Hub) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-h.closing:
	}
	h.beginClose()
	select {
	case <-ctx.Done():
	case <-h.empty:
	}
	h.forceCancel()
	<-h.empty
	return nil
}

// Shutdown stops taking new clients (Open fails with ErrHubClosed), sends
// every open stream everything up to the log's newest seq, then closes it
// (1001 for WebSocket). Call it after ingest has stopped, so newest is the
// last accepted event. It returns nil once every stream has ended, or
// ctx.Err() when ctx ends first, after telling the remaining streams to
// close at once. Idempotent; safe for concurrent use.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.beginClose()
	select {
	case <-h.empty:
		return nil
	case <-ctx.Done():
		h.forceCancel()
		return ctx.Err()
	}
}

func (h *Hub) beginClose() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.closing)
	if h.streams == 0 {
		close(h.empty)
	}
}

// Subscription is what a client asked for.
type Subscription struct {
	// Filter selects the events sent (nil: all).
	Filter store.Filter
	// Resume asks for the buffered events with seq > After first; without
	// it the stream starts live at the newest seq.
	Resume bool
	After  uint64
	// Epoch, when set with Resume, is the log lifetime After came from; a
	// different one gets a reset.
	Epoch string
	// Transport labels metrics and logs: "websocket" or "sse".
	Transport string
	// Remote names the peer in logs and Drop.
	Remote string
	// Expires, when set, ends the stream at that time with CloseExpired
	// (no goroutine: the stream's own wait honours it). ExpireReason
	// starts the close detail, "<ExpireReason>; last seq N" (default
	// "subscription expired"), e.g. "token expired".
	Expires      time.Time
	ExpireReason string
}

// Open registers a client and returns its Stream; ErrHubFull when
// MaxClients are open; or ErrHubClosed once
// Shutdown has begun. The caller must call Serve or Release on it. Safe for
// concurrent use.
func (h *Hub) Open(sub Subscription) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	if h.streams >= h.cfg.MaxClients {
		h.metrics.refused.Inc()
		return nil, ErrHubFull
	}
	h.streams++
	return &Stream{h: h, sub: sub, m: h.metrics.transport(sub.Transport)}, nil
}

func (h *Hub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams--
	if h.closed && h.streams == 0 {
		close(h.empty)
	}
}

// batches holds record slices for Log.Read, shared by all streams: a
// stream holds one only while it is serving, so an idle connection costs no
// batch memory.
var batches = sync.Pool{New: func() any { s := make([]store.Record, 0, DefaultMaxBatch); return &s }}

// goneReason names why a stream's context ended: the hub forced it, or the
// peer went away.
func (h *Hub) goneReason() string {
	if h.force.Err() != nil {
		return "forced"
	}
	return "gone"
}

// sizedLog is a log that counts what a range of its records holds in bytes,
// as store.Ring does: Bytes reports it for after < seq <= through.
type sizedLog interface {
	Bytes(after, through uint64) int64
}

// lagBytes is what the events after cursor up to newest hold, in bytes;
// 0 when the log does not count bytes.
func (h *Hub) lagBytes(cursor, newest uint64) int64 {
	if h.sized == nil || newest <= cursor {
		return 0
	}
	return h.sized.Bytes(cursor, newest)
}

func satSub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
