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

// readChunk is how many slots Read copies per lock hold.
const readChunk = 1024

// Ring is a Log held in memory: a fixed number of slots that the newest
// events overwrite the oldest in. Its epoch is new for every Ring. Safe for
// concurrent use.
type Ring struct {
	mu     sync.RWMutex
	slots  []slot
	newest atomic.Uint64
	// index maps the hash of each stored event's idempotency key to its
	// seq. A hit is confirmed against the slot's key; on a 64-bit hash
	// collision (odds ~1e-10 at full capacity) the older event loses its
	// de-duplication, nothing else.
	index  map[uint64]uint64
	wake   chan struct{} // closed on the next append; nil when nobody waits
	closed bool
	epoch  string
	now    func() time.Time
}

type slot struct {
	Record
	key  string
	hash uint64
}

// closedChan is returned by Wait when there is no need to wait.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

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
		index: make(map[uint64]uint64, capacity),
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
	c := uint64(len(r.slots))
	for i := range batch {
		e := &batch[i]
		if orig, ok := r.index[e.hash]; ok && r.slots[(orig-1)%c].key == e.key {
			out = append(out, Appended{Seq: orig, ID: e.ID, Duplicate: true})
			continue
		}
		seq++
		s := &r.slots[(seq-1)%c]
		if s.Seq != 0 && r.index[s.hash] == s.Seq {
			delete(r.index, s.hash)
		}
		*s = slot{Record: Record{Seq: seq, ID: e.ID, Type: e.Type, StoredAt: now, JSON: e.stamp(seq)}, key: e.key, hash: e.hash}
		r.index[e.hash] = seq
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

// Read implements Log. It copies at most readChunk slots per lock hold and
// filters outside the lock, so a long scan never holds up appends.
func (r *Ring) Read(_ context.Context, after uint64, limit int, f Filter, dst []Record) (Page, error) {
	dst = dst[:0]
	b := r.Bounds()
	p := Page{Bounds: b, Next: max(after, b.Newest)}
	if b.Newest == 0 || after >= b.Newest {
		p.Next = after
		return p, nil
	}
	pos := after + 1
	if pos < b.Oldest {
		p.Gap = &Gap{From: pos, To: b.Oldest - 1}
		pos = b.Oldest
	}
	// The chunk comes from a pool: as a local array its 72 KiB would grow
	// every reader's goroutine stack (and be zeroed) on each Read.
	chunk := chunks.Get().(*[readChunk]Record)
	used := 0
	defer func() {
		clear(chunk[:used]) // do not keep events' bytes alive
		chunks.Put(chunk)
	}()
	for pos <= b.Newest && len(dst) < limit {
		n := 0
		r.mu.RLock()
		if pos < r.oldest(r.newest.Load()) {
			// Overwritten while we scanned: stop before it, the next read
			// reports the gap.
			r.mu.RUnlock()
			p.Next = pos - 1
			p.Records = dst
			return p, nil
		}
		c := uint64(len(r.slots))
		for ; n < readChunk && pos+uint64(n) <= b.Newest; n++ {
			chunk[n] = r.slots[(pos+uint64(n)-1)%c].Record
		}
		r.mu.RUnlock()
		used = max(used, n)
		for i := 0; i < n; i++ {
			if f.Match(chunk[i].Type) {
				dst = append(dst, chunk[i])
				if len(dst) == limit {
					p.Next = chunk[i].Seq
					p.Records = dst
					return p, nil
				}
			}
		}
		pos += uint64(n)
	}
	p.Records = dst
	return p, nil
}

// chunks holds Read's scratch space.
var chunks = sync.Pool{New: func() any { return new([readChunk]Record) }}

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
		return closedChan
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.newest.Load() > after {
		return closedChan
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
