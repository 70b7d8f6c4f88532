package store

// seqIndex maps idempotency-key hashes to the seqs of stored events: an
// open-addressing table with linear probing and backward-shift deletion,
// sized at twice the ring's capacity so probe runs stay short.
//
// The ring needs a lookup, an insert and a delete per appended event, and
// deletes as many keys as it inserts. Go's map marks deleted entries with
// tombstones, and in a table that churns like this the lookups for absent
// keys (every new event) probe through them: profiling showed over half of
// Append's time in map probing. Backward-shift deletion leaves no
// tombstones, and entries keep their hash so probing touches only the
// table.
type seqIndex struct {
	entries []indexEntry
	mask    uint64
}

type indexEntry struct {
	hash uint64
	seq  uint64 // 0 = empty
}

func newSeqIndex(capacity int) seqIndex {
	n := uint64(1)
	for n < 2*uint64(capacity) {
		n <<= 1
	}
	return seqIndex{entries: make([]indexEntry, n), mask: n - 1}
}

// find returns the first seq stored under hash h for which match is true,
// or 0.
func (x *seqIndex) find(h uint64, match func(seq uint64) bool) uint64 {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		e := x.entries[i]
		if e.seq == 0 {
			return 0
		}
		if e.hash == h && match(e.seq) {
			return e.seq
		}
	}
}

// insert adds seq under hash h. The table never fills: it has twice the
// ring's capacity and the ring removes an entry for every one it adds.
func (x *seqIndex) insert(h, seq uint64) {
	i := h & x.mask
	for x.entries[i].seq != 0 {
		i = (i + 1) & x.mask
	}
	x.entries[i] = indexEntry{hash: h, seq: seq}
}

// remove deletes seq, stored under hash h, and shifts later entries of its
// probe run back so that no lookup ever needs a tombstone.
func (x *seqIndex) remove(h, seq uint64) {
	i := h & x.mask
	for x.entries[i].seq != seq {
		if x.entries[i].seq == 0 {
			return // not present
		}
		i = (i + 1) & x.mask
	}
	for j := (i + 1) & x.mask; ; j = (j + 1) & x.mask {
		e := x.entries[j]
		if e.seq == 0 {
			break
		}
		// Move e into the hole at i unless its home lies cyclically in (i, j].
		home := e.hash & x.mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.entries[i] = e
			i = j
		}
	}
	x.entries[i] = indexEntry{}
}
