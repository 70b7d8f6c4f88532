// Package natsjs is a store.Log on NATS JetStream: one stream holds the
// events, so several gateways share one ordered log that survives restarts.
//
// The mapping (see docs/NATS.md for what is guaranteed):
//
//   - the log is one stream (Config.Stream) with the single subject space
//     <Prefix>.events.>; an event of type order.created is stored under
//     <Prefix>.events.order.created, so type patterns are subject filters;
//   - an event's seq is its stream sequence; the stored payload is the
//     event's JSON with `{"seq":N,` left out (store.Event.Unsequenced: a `{`
//     and blank headroom, then the members), and readers stamp the seq into
//     the headroom of the bytes they received, without copying;
//   - idempotency is JetStream's de-duplication on the Nats-Msg-Id header
//     (a digest of source and id) within the stream's duplicate window;
//   - capacity is MaxMsgs with DiscardOld, retention is MaxAge;
//   - a batch is one JetStream atomic batch (nats-server 2.12 and later).
package natsjs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for zero Config fields.
const (
	DefaultStream          = "EVENTGATE"
	DefaultPrefix          = "eventgate"
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultTimeout         = 5 * time.Second
	// DefaultMaxMsgs is the log's capacity in events when Config.MaxMsgs
	// is 0: a durable log on disk holds ten times the ring's default.
	DefaultMaxMsgs = 1_000_000
	// DefaultMaxBatch is nats-server's default limit on an atomic batch
	// (jetstream { limits { max_batch_size } } raises it).
	DefaultMaxBatch = 1000
)

// Config configures Open. Zero fields mean the documented defaults.
type Config struct {
	// Conn is the connection to use; Close leaves it open. When nil, Open
	// connects to URL with Options and Close closes that connection.
	Conn    *nats.Conn
	URL     string        // default nats.DefaultURL
	Options []nats.Option // credentials, TLS, name…; used with URL only

	Stream string // stream name; default DefaultStream
	// EncryptionKey, EncryptionKeySize random bytes, seals the webhooks'
	// secrets and custom header values in the bucket (AES-256-GCM); nil
	// stores them in clear.
	EncryptionKey []byte
	// Bucket is the webhooks' key-value bucket (OpenWebhooks); default
	// Stream + "_WEBHOOKS".
	Bucket string
	// DeliveryLogSize is how many messages of delivery states the shared
	// delivery log keeps per webhook (each holds one state or several
	// noted together), and how many deliveries listing answers for
	// (OpenQueue); default 1000.
	DeliveryLogSize int
	Prefix          string // subject prefix; default DefaultPrefix
	Replicas        int    // stream replicas; default 1
	// Memory selects memory storage (tests, benchmarks); the default is
	// file storage.
	Memory bool
	// MaxMsgs is the log's capacity: the oldest events are dropped past
	// it. Default DefaultMaxMsgs.
	MaxMsgs int64
	// MaxBytes is the log's capacity in bytes (--buffer-bytes): the
	// stream's MaxBytes, past which the oldest events are dropped, and
	// its MaxMsgSize, so that one event larger than the whole budget is
	// refused (ErrEventTooLarge) instead of pushing every event out.
	// 0: no limit.
	MaxBytes int64
	// MaxAge drops events older than it (--retention); 0 keeps them until
	// MaxMsgs pushes them out.
	MaxAge time.Duration
	// DuplicateWindow is how long a source+id is remembered; default
	// DefaultDuplicateWindow, never more than MaxAge.
	DuplicateWindow time.Duration
	// MaxBatch is the largest batch Append takes (ErrBatchTooLarge past
	// it); default DefaultMaxBatch. It must not exceed the server's.
	MaxBatch int
	// MaxPending and MaxPendingBytes bound the events (and their bytes)
	// that Appends have queued for the writers (see Append): past either,
	// Append waits for room; defaults DefaultMaxPending and
	// DefaultMaxPendingBytes.
	MaxPending      int
	MaxPendingBytes int
	// TailEvents and TailBytes bound the tail: the newest events, kept in
	// memory for the readers that follow the log (see tail.go); defaults
	// DefaultTailEvents and DefaultTailBytes.
	TailEvents int
	TailBytes  int64
	// Timeout bounds each JetStream call whose ctx has no deadline;
	// default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger // default discards
}

// Log is a store.Log on a JetStream stream. It is safe for concurrent use.
// Open starts its goroutines: a watcher that follows the stream so that
// Bounds and Wait see appends made through other gateways, and the
// writers that send Appends to the stream (see Append); Close stops them.
type Log struct {
	cfg     Config
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	subj    string // "<prefix>.events."
	getSubj string // "$JS.API.DIRECT.GET.<stream>"
	epoch   string

	newest atomic.Uint64
	oldest atomic.Uint64
	tail   *tail // the newest events, as the watcher brought them

	mu     sync.Mutex
	wake   chan struct{} // closed when the tail grows; nil when nobody waits
	closed bool
	// deliveriesOK: the delivery log's stream exists (ensureDeliveries).
	deliveriesOK bool
	// countersOK: the delivery totals' stream exists (ensureCounters).
	countersOK bool

	limits Limits

	// The group commit (commit.go).
	commit      *committer
	stopWriters context.CancelFunc
	writersDone sync.WaitGroup
	soloSem     chan struct{} // soloSlots: Appends published alone

	stopped atomic.Bool
	iter    jetstream.MessagesContext
	stop    context.CancelFunc
	done    chan struct{} // closed when the watcher has returned
	log     *slog.Logger
}

// The watcher's heartbeat and the longest it waits in one call.
const (
	watchHeartbeat = time.Second
	watchWait      = 5 * watchHeartbeat
)

// Open connects (unless cfg.Conn is set), creates the stream or updates
// its limits to cfg, and starts following it. The returned Log is running;
// Close stops it. ctx bounds Open only.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg = withDefaults(cfg)
	l := &Log{
		cfg:     cfg,
		nc:      cfg.Conn,
		subj:    cfg.Prefix + ".events.",
		getSubj: "$JS.API.DIRECT.GET." + cfg.Stream,
		log:     cfg.Logger,
		done:    make(chan struct{}),
		soloSem: make(chan struct{}, soloSlots),
		tail:    newTail(cfg.TailEvents, cfg.TailBytes),
	}
	if l.nc == nil {
		nc, err := nats.Connect(cfg.URL, cfg.Options...)
		if err != nil {
			return nil, fmt.Errorf("natsjs: connect %s: %w", cfg.URL, err)
		}
		l.nc, l.ownConn = nc, true
	}
	if err := l.open(ctx); err != nil {
		if l.ownConn {
			l.nc.Close()
		}
		return nil, err
	}
	return l, nil
}

func withDefaults(cfg Config) Config {
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Bucket == "" {
		cfg.Bucket = cfg.Stream + "_WEBHOOKS"
	}
	if cfg.DeliveryLogSize <= 0 {
		cfg.DeliveryLogSize = 1000
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = DefaultMaxMsgs
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.MaxAge > 0 && cfg.DuplicateWindow > cfg.MaxAge {
		cfg.DuplicateWindow = cfg.MaxAge
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if cfg.TailEvents <= 0 {
		cfg.TailEvents = DefaultTailEvents
	}
	if cfg.TailBytes <= 0 {
		cfg.TailBytes = DefaultTailBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

func (l *Log) open(ctx context.Context) error {
	js, err := jetstream.New(l.nc)
	if err != nil {
		return fmt.Errorf("natsjs: %w", err)
	}
	l.js = js
	storage := jetstream.FileStorage
	if l.cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	maxBytes := int64(-1) // none
	if l.cfg.MaxBytes > 0 {
		maxBytes = l.cfg.MaxBytes
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:               l.cfg.Stream,
		Description:        "eventgate events",
		Subjects:           []string{l.subj + ">"},
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxMsgs:            l.cfg.MaxMsgs,
		MaxBytes:           maxBytes,
		MaxMsgSize:         int32(min(maxBytes, math.MaxInt32)),
		MaxAge:             l.cfg.MaxAge,
		Duplicates:         l.cfg.DuplicateWindow,
		Storage:            storage,
		Replicas:           l.cfg.Replicas,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	})
	if err != nil {
		return fmt.Errorf("natsjs: stream %s: %w", l.cfg.Stream, err)
	}
	info := s.CachedInfo()
	l.limits = limitsOf(l.cfg, info.Config)
	// The epoch names this stream's lifetime: the same on every gateway
	// and across restarts, new when the stream is deleted and made anew.
	l.epoch = l.cfg.Stream + "-" + strconv.FormatInt(info.Created.UnixNano(), 36)
	l.newest.Store(info.State.LastSeq)
	if info.State.Msgs > 0 {
		l.oldest.Store(info.State.FirstSeq)
	}
	l.tail.resetLocked(info.State.LastSeq + 1) // not shared yet

	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{l.subj + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		return fmt.Errorf("natsjs: watcher: %w", err)
	}
	// Short pulls with a 1s heartbeat: when the consumer's server goes
	// away, the ordered consumer notices within seconds and resumes on
	// another one after the last seq it saw. What it buffers is bounded in
	// bytes (at least two of the largest messages the server takes).
	buffered := int(max(16<<20, 2*l.nc.MaxPayload()))
	it, err := c.Messages(jetstream.PullMaxBytes(buffered), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(watchHeartbeat))
	if err != nil {
		return fmt.Errorf("natsjs: watcher: %w", err)
	}
	if err := l.startWriters(); err != nil {
		it.Stop()
		return err
	}
	l.iter = it
	wctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	go l.watch(wctx)
	return nil
}

// watch follows the stream's new messages: each goes into the tail,
// advances newest and wakes the readers waiting. It is the Log's one
// goroutine; Close stops it.
func (l *Log) watch(ctx context.Context) {
	defer close(l.done)
	lastInfo := time.Now()
	for {
		// The wait must outlast two heartbeats: nats.go checks for missed
		// heartbeats within one Next call only.
		msg, err := l.iter.Next(jetstream.NextMaxWait(watchWait))
		if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() == nil {
				l.log.Error("natsjs: the watcher stopped: events appended through other gateways are no longer seen; restart the gateway")
			}
			return
		}
		if err == nil {
			if md, merr := msg.Metadata(); merr == nil {
				// The tail first: a reader that sees newest move finds
				// the event in memory.
				seq := md.Sequence.Stream
				if rec, rerr := l.recordOf(seq, msg.Subject(), md.Timestamp, msg.Data()); rerr == nil {
					l.tail.add(rec)
				} else {
					l.log.Warn("natsjs: not an eventgate event; not kept in the tail", "seq", seq, "err", rerr)
					l.tail.skip(seq)
				}
				l.advance(seq)
				l.wakeWaiters()
			}
		} else if !errors.Is(err, nats.ErrTimeout) {
			l.log.Warn("natsjs: watcher", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		// With MaxAge, events leave from the head without an append:
		// refresh oldest from the stream's state now and then.
		if l.cfg.MaxAge > 0 && time.Since(lastInfo) >= time.Second {
			lastInfo = time.Now()
			l.refreshOldest(ctx)
		}
	}
}

func (l *Log) refreshOldest(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	s, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		return
	}
	st := s.CachedInfo().State
	if st.Msgs > 0 {
		l.raiseOldest(st.FirstSeq)
	} else if st.LastSeq > 0 {
		l.raiseOldest(st.LastSeq + 1)
	}
	l.advance(st.LastSeq)
}

// advance moves newest up to seq (never down) and wakes waiters.
func (l *Log) advance(seq uint64) {
	for {
		cur := l.newest.Load()
		if seq <= cur {
			return
		}
		if l.newest.CompareAndSwap(cur, seq) {
			break
		}
	}
	if n := uint64(l.cfg.MaxMsgs); seq > n {
		l.raiseOldest(seq - n + 1)
	}
	if l.oldest.Load() == 0 {
		l.raiseOldest(1)
	}
}

// wakeWaiters wakes the readers waiting (Wait): the tail has grown.
func (l *Log) wakeWaiters() {
	l.mu.Lock()
	w := l.wake
	l.wake = nil
	l.mu.Unlock()
	if w != nil {
		close(w)
	}
}

func (l *Log) raiseOldest(seq uint64) {
	for {
		cur := l.oldest.Load()
		if seq <= cur || l.oldest.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// Bounds implements store.Log from state kept by appends and the watcher;
// it makes no call to the server. Newest may trail appends made through
// other gateways by the watcher's delivery latency.
func (l *Log) Bounds() store.Bounds {
	n := l.newest.Load()
	o := l.oldest.Load()
	if n == 0 {
		o = 0
	}
	return store.Bounds{Oldest: o, Newest: n, Epoch: l.epoch}
}

// Wait implements store.Log. The readers are woken by the watcher, once
// it has put an event in the tail and moved newest past it (an Append
// answers only then, but after awaitTail gives up), so that a reader
// woken reads it from memory.
func (l *Log) Wait(after uint64) <-chan struct{} {
	if l.newest.Load() > after {
		return store.Ready
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.newest.Load() > after {
		return store.Ready
	}
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

// Ready reports whether the log can serve: nil while it is open,
// connected to NATS and following the stream (its watcher running), for
// /readyz.
func (l *Log) Ready() error {
	if l.stopped.Load() {
		return store.ErrClosed
	}
	if st := l.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsjs: connection %s", st)
	}
	select {
	case <-l.done:
		return errors.New("natsjs: the watcher has stopped")
	default:
	}
	return nil
}

// Close implements store.Log: it stops the writers and the watcher and
// waits for them, wakes waiters, and closes the connection if Open made
// it. Appends queued or in flight end with ErrClosed (events in flight may
// have been stored: a retry with the same ids finds them); later appends
// fail with ErrClosed; reads work while the connection stays open.
// Idempotent.
func (l *Log) Close() error {
	if !l.stopped.CompareAndSwap(false, true) {
		return nil
	}
	l.closeWriters()
	l.stop()
	l.iter.Stop()
	<-l.done
	l.mu.Lock()
	l.closed = true
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	l.mu.Unlock()
	if l.ownConn {
		l.nc.Close()
	}
	return nil
}

// withTimeout gives ctx the Log's default deadline when it has none.
func (l *Log) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.cfg.Timeout)
}

// msgID is the Nats-Msg-Id of an event: a digest of its idempotency key,
// so that any source and id (NUL, line breaks, length) make a valid header.
func msgID(source, id string) string {
	sum := sha256.Sum256([]byte(store.IdempotencyKey(source, id)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var _ store.Log = (*Log)(nil)
