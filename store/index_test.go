package store

import (
	"math/rand/v2"
	"testing"
)

// TestSeqIndexAgainstMap churns the index like the ring does (insert the
// new, remove the oldest) with many colliding hashes, and checks every
// lookup against a plain map.
func TestSeqIndexAgainstMap(t *testing.T) {
	const capacity = 64
	x := newSeqIndex(capacity)
	ref := map[uint64]uint64{} // seq -> hash
	rng := rand.New(rand.NewPCG(1, 2))
	hashOf := func() uint64 { return rng.Uint64N(40) * 0x9e3779b97f4a7c15 >> (rng.Uint64N(2) * 60) } // few, clustered homes
	for seq := uint64(1); seq <= 20000; seq++ {
		h := hashOf()
		x.insert(h, seq)
		ref[seq] = h
		if old := seq - capacity; seq > capacity {
			x.remove(ref[old], old)
			delete(ref, old)
		}
		for probe, ph := range ref {
			got := x.find(ph, func(s uint64) bool { return s == probe })
			if got != probe {
				t.Fatalf("after seq %d: find(%d) = %d", seq, probe, got)
			}
		}
		if got := x.find(h^1, func(uint64) bool { return true }); got != 0 {
			if _, ok := ref[got]; !ok || ref[got] != h^1 {
				t.Fatalf("find of an absent hash returned %d", got)
			}
		}
	}
	n := 0
	for _, e := range x.entries {
		if e.seq != 0 {
			n++
		}
	}
	if n != capacity {
		t.Fatalf("%d entries left, want %d", n, capacity)
	}
}
