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

// DefaultCapacity is the Ring's capacity when none is given.
const DefaultCapacity = 100_000

// readChunk is how many slots Read examines per lock hold.
const readChunk = 512

// Ring is a Log held in memory: a fixed number of slots that the newest
// events overwrite the oldest in. Its epoch is new for every Ring. Safe for
// concurrent use.
type Ring struct {
	mu     sync.RWMutex
	slots  []slot
	newest atomic.Uint64
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
}

// NewRing returns an empty ring holding at most capacity events
// (DefaultCapacity when capacity <= 0).
func NewRing(capacity int) *Ring {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Ring{
		slots: make([]slot, capacity),
		index: newSeqIndex(capacity),
		epoch: hex.EncodeToString(b[:]),
		now:   time.Now,
	}
}

// Capacity is the number of events the ring holds.
func (r *Ring) Capacity() int { return len(r.slots) }

// Len is the number of events stored now.
func (r *Ring) Len() int {
	b := r.Bounds()
	if b.Newest == 0 {
		return 0
	}
	return int(b.Newest - b.Oldest + 1)
}

// Bounds implements Log. It takes no lock.
func (r *Ring) Bounds() Bounds {
	n := r.newest.Load()
	return Bounds{Oldest: r.oldest(n), Newest: n, Epoch: r.epoch}
}

func (r *Ring) oldest(newest uint64) uint64 {
	switch c := uint64(len(r.slots)); {
	case newest == 0:
		return 0
	case newest <= c:
		return 1
	default:
		return newest - c + 1
	}
}

// Append implements Log. Events are encoded before the lock is taken; under
// it, each event costs a seq, a stamp and an index update, with no
// allocation when out has room.
func (r *Ring) Append(_ context.Context, batch []Event, out []Appended) ([]Appended, error) {
	if len(batch) > len(r.slots) {
		return out, fmt.Errorf("%w: %d events, capacity %d", ErrBatchTooLarge, len(batch), len(r.slots))
	}
	for i := range batch {
		if err := batch[i].Encode(); err != nil {
			return out, fmt.Errorf("encode event %d: %w", i, err)
		}
	}
	now := r.now().UnixNano()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return out, ErrClosed
	}
	seq := r.newest.Load()
	for i := range batch {
		e := &batch[i]
		if orig := r.index.find(e.hash, func(s uint64) bool { o := r.slot(s); return o.ID == e.ID && o.source == e.Source }); orig != 0 {
			out = append(out, Appended{Seq: orig, ID: e.ID, Duplicate: true})
			continue
		}
		seq++
		s := r.slot(seq)
		if s.Seq != 0 {
			r.index.remove(s.hash, s.Seq) // before the slot changes
		}
		*s = slot{Record: Record{Seq: seq, ID: e.ID, Type: e.Type, StoredAt: now, JSON: e.stamp(seq)}, source: e.Source, hash: e.hash}
		r.index.insert(e.hash, seq)
		out = append(out, Appended{Seq: seq, ID: e.ID})
	}
	r.newest.Store(seq)
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

// Read implements Log. It examines at most readChunk slots per lock hold,
// appending matches straight to dst, so a long scan never holds up
// appends for long and needs no scratch space.
func (r *Ring) Read(_ context.Context, after uint64, limit int, f Filter, dst []Record) (Page, error) {
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
	for pos <= b.Newest {
		r.mu.RLock()
		if pos < r.oldest(r.newest.Load()) {
			// Overwritten while we scanned: stop before it; the next read
			// reports the gap.
			r.mu.RUnlock()
			p.Next = pos - 1
			p.Records = dst
			return p, nil
		}
		end := min(b.Newest, pos+readChunk-1)
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
	n := r.newest.Load()
	if seq == 0 || seq > n || seq < r.oldest(n) {
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
