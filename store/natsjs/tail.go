package natsjs

import (
	"sync"

	"github.com/eventgate/eventgate/store"
)

// The tail: the newest events as the watcher received them (whole, from
// this gateway and every other one), kept in memory so that the readers
// following the log (streams) read them here. Without it, every stream
// client made its own batch direct get on every wake-up, and the work on
// the NATS servers grew with the clients of every gateway; with it, each
// gateway takes each event once, from its watcher, and fans it out
// locally (docs/ARCHITECTURE.md, DESIGN.md: every reader is a cursor).
//
// The watcher moves newest only once an event is in the tail, and wakes
// the readers then; an Append answers once newest has passed its events
// (awaitTail), so a reader woken, or reading after an Append answered,
// finds them here.

// Defaults of the tail's bounds (Config.TailEvents, TailBytes).
const (
	DefaultTailEvents = 16_384
	DefaultTailBytes  = 32 << 20
)

// tail is a window of consecutive seqs lo..hi (empty when hi < lo) in a
// ring of slots, within maxEvents events and maxBytes bytes of JSON: the
// oldest leave first. Safe for concurrent use.
type tail struct {
	maxEvents int
	maxBytes  int64

	mu     sync.RWMutex
	slots  []store.Record // seq s at slots[s%len(slots)], for lo <= s <= hi
	lo, hi uint64
	bytes  int64
}

func newTail(maxEvents int, maxBytes int64) *tail {
	return &tail{maxEvents: maxEvents, maxBytes: maxBytes, slots: make([]store.Record, maxEvents), lo: 1}
}

// add appends rec, the event after hi. A rec that does not follow hi (the
// stream dropped or skipped seqs, or the watcher resumed elsewhere)
// starts the window anew; one larger than half the byte budget is not
// kept, and the window starts after it.
func (t *tail) add(rec store.Record) {
	size := int64(len(rec.JSON))
	t.mu.Lock()
	defer t.mu.Unlock()
	if rec.Seq <= t.hi {
		return // held already, or passed
	}
	if t.hi < t.lo || rec.Seq != t.hi+1 {
		t.resetLocked(rec.Seq)
	}
	if size > t.maxBytes/2 {
		t.resetLocked(rec.Seq + 1)
		return
	}
	for t.hi >= t.lo && (int(t.hi-t.lo+1) >= t.maxEvents || t.bytes+size > t.maxBytes) {
		t.dropOldestLocked()
	}
	t.slots[rec.Seq%uint64(len(t.slots))] = rec
	t.hi = rec.Seq
	t.bytes += size
}

// skip passes over seq, which the tail cannot hold: the window starts
// after it.
func (t *tail) skip(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked(seq + 1)
}

// resetLocked empties the window; the next seq it takes is next.
func (t *tail) resetLocked(next uint64) {
	for t.hi >= t.lo {
		t.dropOldestLocked()
	}
	t.lo, t.hi = next, next-1
}

func (t *tail) dropOldestLocked() {
	i := t.lo % uint64(len(t.slots))
	t.bytes -= int64(len(t.slots[i].JSON))
	t.slots[i] = store.Record{}
	t.lo++
}

// newest is the newest seq the tail holds, or the one before the first it
// will take.
func (t *tail) newest() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.hi
}

// read serves a read of the records after seq after matching f, at most
// limit, when the tail holds after+1 and at least one seq past it (not
// below oldest, the stream's first). next is the last seq examined. ok
// false: read the stream instead.
func (t *tail) read(after, oldest uint64, limit int, f store.Filter, dst []store.Record) (recs []store.Record, next uint64, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if after+1 < max(t.lo, oldest) || after >= t.hi {
		return dst, after, false
	}
	next = after
	for s := after + 1; s <= t.hi && len(dst) < limit; s++ {
		rec := t.slots[s%uint64(len(t.slots))]
		next = s
		if f == nil || f.Match(rec.Type) {
			dst = append(dst, rec)
		}
	}
	return dst, next, true
}

// Tail reports the events the tail holds and the bytes of their JSON
// (for metrics).
func (l *Log) Tail() (events int, bytes int64) { return l.tail.stats() }

// stats reports the events and bytes held.
func (t *tail) stats() (events int, bytes int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.hi >= t.lo {
		events = int(t.hi - t.lo + 1)
	}
	return events, t.bytes
}
