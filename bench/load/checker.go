package main

// maxMissing bounds how many missing seqs a checker remembers one by one
// (to tell a late event from a duplicate); beyond it, gaps are only
// counted.
const maxMissing = 1 << 16

// checker checks one subscriber's sequence of seqs, which should rise by
// exactly 1 from first to last. It counts events lost (never seen),
// duplicated (seen twice) and reordered (seen after a later one). It is
// not safe for concurrent use.
type checker struct {
	next     uint64              // the seq expected next
	missing  map[uint64]struct{} // skipped seqs not seen yet, at most maxMissing
	overflow uint64              // skipped seqs not remembered
	got      uint64
	dup      uint64
	reorder  uint64
}

// newChecker returns a checker expecting first as its first seq.
func newChecker(first uint64) *checker {
	return &checker{next: first, missing: map[uint64]struct{}{}}
}

// observe records one seq.
func (c *checker) observe(seq uint64) {
	c.got++
	switch {
	case seq == c.next:
		c.next++
	case seq > c.next:
		for s := c.next; s < seq; s++ {
			if len(c.missing) < maxMissing {
				c.missing[s] = struct{}{}
			} else {
				c.overflow++
			}
		}
		c.next = seq + 1
	default:
		if _, ok := c.missing[seq]; ok {
			delete(c.missing, seq)
			c.reorder++
		} else {
			c.dup++
		}
	}
}

// done reports whether every seq up to last has been seen in order or
// late.
func (c *checker) done(last uint64) bool {
	return c.next > last && len(c.missing) == 0 && c.overflow == 0
}

// lost returns how many seqs up to last were never seen.
func (c *checker) lost(last uint64) uint64 {
	n := uint64(len(c.missing)) + c.overflow
	if c.next <= last {
		n += last - c.next + 1
	}
	return n
}
