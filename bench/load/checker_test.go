package main

import (
	"testing"
	"time"
)

func TestChecker(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		seqs                 []uint64
		lost, dup, reordered uint64
		done                 bool
	}{
		{"in order", []uint64{5, 6, 7, 8}, 0, 0, 0, true},
		{"gap", []uint64{5, 6, 8}, 1, 0, 0, false},
		{"tail missing", []uint64{5, 6}, 2, 0, 0, false},
		{"head missing", []uint64{7, 8}, 2, 0, 0, false},
		{"duplicate", []uint64{5, 6, 6, 7, 8}, 0, 1, 0, true},
		{"duplicate of first", []uint64{5, 5, 6, 7, 8}, 0, 1, 0, true},
		{"reordered", []uint64{5, 7, 6, 8}, 0, 0, 1, true},
		{"reordered then duplicated", []uint64{5, 7, 6, 6, 8}, 0, 1, 1, true},
		{"everything", []uint64{5, 8, 8, 6}, 1, 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(5)
			for _, s := range tc.seqs {
				c.observe(s)
			}
			if got := c.lost(8); got != tc.lost {
				t.Errorf("lost = %d, want %d", got, tc.lost)
			}
			if c.dup != tc.dup || c.reorder != tc.reordered {
				t.Errorf("dup, reordered = %d, %d; want %d, %d", c.dup, c.reorder, tc.dup, tc.reordered)
			}
			if got := c.done(8); got != tc.done {
				t.Errorf("done = %v, want %v", got, tc.done)
			}
		})
	}
}

func TestCheckerBoundsMemory(t *testing.T) {
	c := newChecker(1)
	c.observe(maxMissing + 1001)
	if len(c.missing) != maxMissing || c.overflow != 1000 {
		t.Fatalf("missing %d, overflow %d", len(c.missing), c.overflow)
	}
	if got := c.lost(maxMissing + 1001); got != maxMissing+1000 {
		t.Fatalf("lost = %d", got)
	}
}

func TestHistPercentiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.pct(tc.q)
		if d := got - tc.want; d < -tc.want/50 || d > tc.want/50 {
			t.Errorf("p%v = %v, want %v ± 2%%", tc.q*100, got, tc.want)
		}
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		if l := lower(index(us)); l > us || float64(us-l) > float64(us)/60 {
			t.Fatalf("lower(index(%d)) = %d", us, l)
		}
	}
}
