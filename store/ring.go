package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Ring defaults and costs.
const (
	// DefaultCapacity is the Ring's capacity in events when none is given.
	DefaultCapacity = 100_000
	// DefaultMaxBytes is the Ring's budget in bytes when none is given
	// (--buffer-bytes).
	DefaultMaxBytes = 256 << 20
	// RecordOverhead is what the Ring counts for each record besides its
	// JSON, id, type and source: the encoding's seq headroom, allocation
	// headers and rounding. The slot array itself (about 110 bytes per
	// slot of capacity) is allocated up front and not counted.
	RecordOverhead = 64
)

// Read's work per lock hold: it examines at most readChunk slots, and at
// most readWork/f.cost() (but at least readMinChunk) when a filter is
// costly, since each slot then costs a test per pattern, segment by
// segment: 100 patterns of 63 segments make 4 slots per hold.
const (
	readChunk    = 512
	readWork     = 16 << 10
	readMinChunk = 4
)

// Ring is a Log held in memory: a fixed number of slots that the newest
// events overwrite the oldest in, within a budget of bytes: an append drops
// the oldest events while either the count (Capacity) or the bytes
// (MaxBytes) would be exceeded, and readers behind them see a gap. Its
// epoch is new for every Ring. Safe for concurrent use.
type Ring struct {
	mu       sync.RWMutex
	slots    []slot
	maxBytes int64
	newest   atomic.Uint64
	// oldest is the oldest seq stored (0 when empty). Append stores newest
	// before oldest and Bounds loads them the other way round, so a
	// lock-free Bounds never sees oldest past newest.
	oldest atomic.Uint64
	held   atomic.Int64 // bytes of the stored records; written under mu
	total  uint64       // bytes of every record ever stored, under mu
	// index finds stored events by the hash of their idempotency key; a
	// hit is confirmed against the slot's key.
	index  seqIndex
	wake   chan struct{} // closed on the next append; nil when nobody waits
	closed bool
	epoch  string
	now    func() time.Time
}

type slot struct {
	Record
	source string // with Record.ID, the idempotency key
	hash   uint64
	start  uint64 // Ring.total before this record was stored
	size   int64  // what this record counts for in bytes (recordSize)
}

// RingConfig configures a Ring; zero fields mean the documented defaults.
type RingConfig struct {
	// Capacity is the most events held (--buffer-size); default
	// DefaultCapacity.
	Capacity int
	// MaxBytes is the most bytes held (--buffer-bytes), counted per record
	// as its JSON, id, type and source plus RecordOverhead; default
	// DefaultMaxBytes. An event that alone counts for more is refused with
	// ErrEventTooLarge, a batch that does with ErrBatchTooLarge: neither
	// empties the ring.
	MaxBytes int64
}

// NewRing returns an empty ring holding at most capacity events
// (DefaultCapacity when capacity <= 0) within DefaultMaxBytes.
func NewRing(capacity int) *Ring { return NewRingConfig(RingConfig{Capacity: capacity}) }

// NewRingConfig returns an empty ring configured by cfg.
func NewRingConfig(cfg RingConfig) *Ring {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Ring{
		slots:    make([]slot, cfg.Capacity),
		maxBytes: cfg.MaxBytes,
		index:    newSeqIndex(cfg.Capacity),
		epoch:    hex.EncodeToString(b[:]),
		now:      time.Now,
	}
}

// Capacity is the number of events the ring holds at most.
func (r *Ring) Capacity() int { return len(r.slots) }

// MaxBytes is the number of bytes the ring holds at most (RingConfig.MaxBytes).
func (r *Ring) MaxBytes() int64 { return r.maxBytes }

// HeldBytes is the number of bytes the stored records count for now. It
// takes no lock.
func (r *Ring) HeldBytes() int64 { return r.held.Load() }

// Bytes is what the records with after < seq <= through that are still
// stored count for, in bytes (as MaxBytes counts them). A stream uses it to
// bound what a client lags in bytes. Safe for concurrent use; it takes the
// read lock briefly.
func (r *Ring) Bytes(after, through uint64) int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, o := r.newest.Load(), r.oldest.Load()
	if n == 0 {
		return 0
	}
	through = min(through, n)
	after = max(after, o-1)
	if through <= after {
		return 0
	}
	return int64(r.totalThrough(through) - r.totalThrough(after))
}

// totalThrough is Ring.total as it was once seq was stored, for seq from
// oldest-1 to newest. The caller holds mu.
func (r *Ring) totalThrough(seq uint64) uint64 {
	if seq >= r.newest.Load() {
		return r.total
	}
	return r.slot(seq + 1).start
}

// recordSize is what e counts for against MaxBytes once stored: its JSON
// (within its encoding), the strings a slot keeps, and RecordOverhead.
func recordSize(e *Event) int64 {
	return int64(len(e.enc)+len(e.ID)+len(e.Type)+len(e.Source)) + RecordOverhead
}

// Len is the number of events stored now.
func (r *Ring) Len() int {
	b := r.Bounds()
	if b.Newest == 0 {
		return 0
	}
	return int(b.Newest - b.Oldest + 1)
}

// Bounds implements Log. It takes no lock; Oldest may lag an append in
// progress (Read and Get check it again under the lock).
func (r *Ring) Bounds() Bounds {
	o := r.oldest.Load()
	n := r.newest.Load()
	if o == 0 && n != 0 {
		o = 1 // the first append stored newest and not yet oldest
	}
	return Bounds{Oldest: o, Newest: n, Epoch: r.epoch}
}

// Append implements Log. Events are encoded before the lock is taken; under
// it, each event costs a seq, a stamp and an index update (and the oldest
// events dropped to make room), with no allocation when out has room.
// Errors: ErrBatchTooLarge for more events than Capacity or more bytes
// than MaxBytes; ErrEventTooLarge for one event of more than MaxBytes;
// ErrClosed.
func (r *Ring) Append(_ context.Context, batch []Event, out []Appended) ([]Appended, error) {
	if len(batch) > len(r.slots) {
		return out, fmt.Errorf("%w: %d events, capacity %d", ErrBatchTooLarge, len(batch), len(r.slots))
	}
	var bytes int64
	for i := range batch {
		if err := batch[i].Encode(); err != nil {
			return out, fmt.Errorf("encode event %d: %w", i, err)
		}
		size := recordSize(&batch[i])
		if size > r.maxBytes {
			return out, fmt.Errorf("%w: event %d counts for %d bytes, the buffer holds %d (--buffer-bytes)", ErrEventTooLarge, i, size, r.maxBytes)
		}
		bytes += size
	}
	if bytes > r.maxBytes {
		return out, fmt.Errorf("%w: %d bytes, the buffer holds %d (--buffer-bytes)", ErrBatchTooLarge, bytes, r.maxBytes)
	}
	now := r.now().UnixNano()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return out, ErrClosed
	}
	seq, oldest := r.newest.Load(), r.oldest.Load()
	held, capacity := r.held.Load(), uint64(len(r.slots))
	for i := range batch {
		e := &batch[i]
		if orig := r.index.find(e.hash, func(s uint64) bool { o := r.slot(s); return o.ID == e.ID && o.source == e.Source }); orig != 0 {
			out = append(out, Appended{Seq: orig, ID: e.ID, Duplicate: true})
			continue
		}
		seq++
		size := recordSize(e)
		// Drop the oldest until both bounds leave room. The batch fits
		// both bounds (checked above), so it never drops its own events.
		for oldest != 0 && oldest < seq && (seq-oldest >= capacity || held+size > r.maxBytes) {
			s := r.slot(oldest)
			r.index.remove(s.hash, s.Seq)
			held -= s.size
			*s = slot{} // let the event's bytes go now
			oldest++
		}
		if oldest == 0 {
			oldest = 1
		}
		*r.slot(seq) = slot{Record: Record{Seq: seq, ID: e.ID, Type: e.Type, StoredAt: now, JSON: e.stamp(seq)},
			source: e.Source, hash: e.hash, start: r.total, size: size}
		r.total += uint64(size)
		held += size
		r.index.insert(e.hash, seq)
		out = append(out, Appended{Seq: seq, ID: e.ID})
	}
	r.held.Store(held)
	r.newest.Store(seq)
	r.oldest.Store(oldest) // after newest: see Ring.oldest
	wake := r.wake
	r.wake = nil
	r.mu.Unlock()
	if wake != nil {
		close(wake)
	}
	return out, nil
}

// slot returns the slot that holds (or will hold) seq.
func (r *Ring) slot(seq uint64) *slot { return &r.slots[(seq-1)%uint64(len(r.slots))] }

// Read implements Log. It examines a bounded number of slots per lock hold
// (fewer the costlier f is to match: see readWork), appending matches
// straight to dst, so a long scan never holds up appends for long and
// needs no scratch space. Between holds it checks ctx: when ctx has ended
// it returns what it found so far (Next says how far it got) with ctx's
// error.
func (r *Ring) Read(ctx context.Context, after uint64, limit int, f Filter, dst []Record) (Page, error) {
	dst = dst[:0]
	b := r.Bounds()
	p := Page{Bounds: b, Next: max(after, b.Newest)}
	if b.Newest == 0 || after >= b.Newest || limit <= 0 {
		p.Next = after
		return p, nil
	}
	pos := after + 1
	if pos < b.Oldest {
		p.Gap = &Gap{From: pos, To: b.Oldest - 1}
		pos = b.Oldest
	}
	chunk := uint64(min(readChunk, max(readMinChunk, readWork/f.cost())))
	for first := true; pos <= b.Newest; first = false {
		if !first {
			if err := ctx.Err(); err != nil {
				p.Next = pos - 1
				p.Records = dst
				return p, err
			}
		}
		r.mu.RLock()
		if pos < r.oldest.Load() {
			// Overwritten while we scanned: stop before it; the next read
			// reports the gap.
			r.mu.RUnlock()
			p.Next = pos - 1
			p.Records = dst
			return p, nil
		}
		end := min(b.Newest, pos+chunk-1)
		for ; pos <= end; pos++ {
			rec := &r.slot(pos).Record
			if f.Match(rec.Type) {
				dst = append(dst, *rec)
				if len(dst) == limit {
					r.mu.RUnlock()
					p.Next = pos
					p.Records = dst
					return p, nil
				}
			}
		}
		r.mu.RUnlock()
	}
	p.Records = dst
	return p, nil
}

// Get implements Log.
func (r *Ring) Get(_ context.Context, seq uint64) (Record, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if seq == 0 || seq > r.newest.Load() || seq < r.oldest.Load() {
		return Record{}, fmt.Errorf("seq %d: %w", seq, ErrNotFound)
	}
	return r.slots[(seq-1)%uint64(len(r.slots))].Record, nil
}

// Wait implements Log.
func (r *Ring) Wait(after uint64) <-chan struct{} {
	if r.newest.Load() > after {
		return Ready
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.newest.Load() > after {
		return Ready
	}
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return r.wake
}

// Close implements Log: later appends fail with ErrClosed and waiters wake.
// Reads keep working on what is stored. Idempotent.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		if r.wake != nil {
			close(r.wake)
			r.wake = nil
		}
	}
	return nil
}

var _ Log = (*Ring)(nil)
