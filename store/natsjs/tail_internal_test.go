package natsjs

import (
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

func tailRec(seq uint64, typ string, size int) store.Record {
	return store.Record{Seq: seq, Type: typ, JSON: []byte(strings.Repeat("x", size))}
}

func seqsOf(recs []store.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// TestTail: the tail keeps consecutive seqs within its event and byte
// bounds (the oldest leave first), starts anew after a jump, keeps no
// event larger than half its bytes, and serves a read only when it holds
// the seq after the reader's cursor and something past it.
func TestTail(t *testing.T) {
	tl := newTail(4, 100)
	tl.resetLocked(1)
	for s := uint64(1); s <= 6; s++ {
		tl.add(tailRec(s, "a.b", 10))
	}
	if n, b := tl.stats(); n != 4 || b != 40 || tl.lo != 3 || tl.hi != 6 {
		t.Fatalf("after 6 adds to a tail of 4: %d events, %d bytes, %d..%d", n, b, tl.lo, tl.hi)
	}
	recs, next, ok := tl.read(2, 1, 10, nil, nil)
	if !ok || next != 6 || len(recs) != 4 || recs[0].Seq != 3 {
		t.Fatalf("read after 2 = %v to %d, ok %v", seqsOf(recs), next, ok)
	}
	if _, _, ok := tl.read(1, 1, 10, nil, nil); ok {
		t.Fatal("read after 1 served, but 2 has left the tail")
	}
	if _, _, ok := tl.read(6, 1, 10, nil, nil); ok {
		t.Fatal("read after the newest served")
	}
	if _, _, ok := tl.read(3, 5, 10, nil, nil); ok {
		t.Fatal("read below the stream's oldest served")
	}
	recs, next, _ = tl.read(2, 1, 2, nil, nil)
	if len(recs) != 2 || next != 4 {
		t.Fatalf("read of 2 after 2 = %v to %d", seqsOf(recs), next)
	}

	tl.add(tailRec(7, "c.d", 10))
	f, err := store.ParseFilter([]string{"c.>"})
	if err != nil {
		t.Fatal(err)
	}
	recs, next, ok = tl.read(3, 1, 10, f, nil)
	if !ok || next != 7 || len(recs) != 1 || recs[0].Seq != 7 {
		t.Fatalf("filtered read after 3 = %v to %d, ok %v", seqsOf(recs), next, ok)
	}

	tl.add(tailRec(7, "c.d", 10)) // again: held already
	tl.add(tailRec(5, "c.d", 10)) // passed
	if tl.hi != 7 {
		t.Fatalf("a repeated or older seq moved the tail to %d", tl.hi)
	}

	tl.add(tailRec(10, "a.b", 10)) // a jump: the window starts anew
	if n, b := tl.stats(); n != 1 || b != 10 || tl.lo != 10 {
		t.Fatalf("after a jump: %d events, %d bytes from %d", n, b, tl.lo)
	}
	for s := uint64(11); s <= 13; s++ {
		tl.add(tailRec(s, "a.b", 40)) // bytes bind before the count
	}
	if n, b := tl.stats(); n != 2 || b != 80 || tl.lo != 12 {
		t.Fatalf("over the byte bound: %d events, %d bytes from %d", n, b, tl.lo)
	}
	tl.add(tailRec(14, "a.b", 60)) // more than half the bytes: not kept
	if n, b := tl.stats(); n != 0 || b != 0 || tl.newest() != 14 {
		t.Fatalf("after an event too large to keep: %d events, %d bytes, newest %d", n, b, tl.newest())
	}
	if _, _, ok := tl.read(13, 1, 10, nil, nil); ok {
		t.Fatal("read of the event not kept served from the tail")
	}
	tl.add(tailRec(15, "a.b", 10))
	if recs, _, ok := tl.read(14, 1, 10, nil, nil); !ok || len(recs) != 1 {
		t.Fatalf("read after the event not kept = %v, ok %v", seqsOf(recs), ok)
	}
}
