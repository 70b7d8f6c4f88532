// Package storetest is the conformance suite every store.Log backend passes.
package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

// NewLog opens an empty log that holds at least capacity events and keeps
// only the newest capacity of them, and registers its Close with tb.Cleanup.
type NewLog func(tb testing.TB, capacity int) store.Log

// Options adapt the suite to a backend's documented semantics. The zero
// Options describe the Ring.
type Options struct {
	// DedupWindow says the backend de-duplicates source+id for a time
	// window after the original was stored (JetStream's duplicate window),
	// whether or not the original is still stored, instead of for exactly
	// as long as it is stored. The overwrite subtest then expects a repeat
	// of an event the log has already dropped to be reported as a
	// duplicate of its original seq, and nothing stored.
	DedupWindow bool
	// ConcurrentBatches is how many batches each of the 8 writers appends
	// in the concurrency test; default 200. A networked backend, where
	// every batch is a round trip, may lower it: ordering is proven as well
	// by fewer batches.
	ConcurrentBatches int
}

// Run runs the whole suite against logs made by newLog, with the Ring's
// semantics (the zero Options).
func Run(t *testing.T, newLog NewLog) { RunOptions(t, newLog, Options{}) }

// RunOptions runs the whole suite against logs made by newLog, adapted by
// opts.
func RunOptions(t *testing.T, newLog NewLog, opts Options) {
	t.Run("AppendAssignsConsecutiveSeqs", func(t *testing.T) { testAppend(t, newLog) })
	t.Run("StoredJSON", func(t *testing.T) { testStoredJSON(t, newLog) })
	t.Run("EmptyAppend", func(t *testing.T) { testEmptyAppend(t, newLog) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, newLog) })
	t.Run("IdempotencyKeyUnambiguous", func(t *testing.T) { testIdempotencyKey(t, newLog) })
	if opts.DedupWindow {
		t.Run("IdempotencyKeptForWindowAfterOverwrite", func(t *testing.T) { testIdempotencyWindow(t, newLog) })
	} else {
		t.Run("IdempotencyForgottenAtOverwrite", func(t *testing.T) { testIdempotencyWrap(t, newLog) })
	}
	t.Run("ReadPagesEachEventOnce", func(t *testing.T) { testPaging(t, newLog) })
	t.Run("ReadFilter", func(t *testing.T) { testFilter(t, newLog) })
	t.Run("ReadGapAfterOverwrite", func(t *testing.T) { testGap(t, newLog) })
	t.Run("Get", func(t *testing.T) { testGet(t, newLog) })
	t.Run("Wait", func(t *testing.T) { testWait(t, newLog) })
	t.Run("ConcurrentAppendAndRead", func(t *testing.T) { testConcurrent(t, newLog, cmp.Or(opts.ConcurrentBatches, 200)) })
	t.Run("Close", func(t *testing.T) { testClose(t, newLog) })
}

// Ev returns a valid event of type typ with the given id (generated from
// the test's counter when empty).
func Ev(typ, id string) store.Event {
	return store.Event{ID: id, Type: typ, Source: "/test", Time: time.Unix(1700000000, 0).UTC(), Data: json.RawMessage(`{"n":1}`)}
}

func batch(n int, prefix string) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		out[i] = Ev("test.event", fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func mustAppend(tb testing.TB, l store.Log, events ...store.Event) []store.Appended {
	tb.Helper()
	out, err := l.Append(context.Background(), events, nil)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	if len(out) != len(events) {
		tb.Fatalf("Append returned %d results for %d events", len(out), len(events))
	}
	return out
}

func testAppend(t *testing.T, newLog NewLog) {
	l := newLog(t, 100)
	if b := l.Bounds(); b.Oldest != 0 || b.Newest != 0 || b.Epoch == "" {
		t.Fatalf("empty log bounds = %+v, want 0/0 and an epoch", b)
	}
	got := mustAppend(t, l, Ev("a.b", "1"))
	if got[0].Seq != 1 || got[0].Duplicate {
		t.Fatalf("first append = %+v, want seq 1", got[0])
	}
	got = mustAppend(t, l, batch(5, "b")...)
	for i, a := range got {
		if a.Seq != uint64(2+i) || a.ID != fmt.Sprintf("b-%d", i) {
			t.Fatalf("batch item %d = %+v, want seq %d", i, a, 2+i)
		}
	}
	if b := l.Bounds(); b.Oldest != 1 || b.Newest != 6 {
		t.Fatalf("bounds = %+v, want 1..6", b)
	}
}

func testStoredJSON(t *testing.T, newLog NewLog) {
	l := newLog(t, 10)
	e := Ev("order.created", "x1")
	e.Subject = "order/1"
	e.Data = json.RawMessage(`{"html":"<b>&</b>"}`)
	mustAppend(t, l, Ev("pad.pad", "p"), e)
	rec, err := l.Get(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Event
	if err := json.Unmarshal(rec.JSON, &back); err != nil {
		t.Fatalf("stored JSON %q does not decode: %v", rec.JSON, err)
	}
	if back.Seq != 2 || back.ID != "x1" || back.Type != "order.created" || back.Subject != "order/1" || back.Source != "/test" || !back.Time.Equal(e.Time) {
		t.Fatalf("stored event = %+v", back)
	}
	if string(back.Data) != `{"html":"<b>&</b>"}` {
		t.Fatalf("data = %s, want it unescaped and unchanged", back.Data)
	}
	if rec.Seq != 2 || rec.ID != "x1" || rec.Type != "order.created" || rec.StoredAt == 0 {
		t.Fatalf("record = %+v", rec)
	}
}

func testIdempotency(t *testing.T, newLog NewLog) {
	l := newLog(t, 100)
	mustAppend(t, l, Ev("a.a", "one"), Ev("a.a", "two"))
	got := mustAppend(t, l, Ev("a.a", "three"), Ev("a.a", "one"), Ev("a.a", "three"))
	want := []store.Appended{{Seq: 3, ID: "three"}, {Seq: 1, ID: "one", Duplicate: true}, {Seq: 3, ID: "three", Duplicate: true}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	other := Ev("a.a", "one")
	other.Source = "/elsewhere"
	if got := mustAppend(t, l, other); got[0].Duplicate || got[0].Seq != 4 {
		t.Fatalf("same id from another source = %+v, want stored as seq 4", got[0])
	}
	if n := l.Bounds().Newest; n != 4 {
		t.Fatalf("newest = %d, want 4 (duplicates not stored)", n)
	}
}

// testIdempotencyKey: source and id are told apart however they split
// the same bytes: a NUL inside either cannot make two events one.
func testIdempotencyKey(t *testing.T, newLog NewLog) {
	l := newLog(t, 100)
	ev := func(source, id string) store.Event {
		e := Ev("a.a", id)
		e.Source = source
		return e
	}
	pairs := [][2]store.Event{
		{ev("shop\x00x", "42"), ev("shop", "x\x0042")},
		{ev("ab", "c"), ev("a", "bc")},
		{ev("s\x00", "\x00i"), ev("s", "\x00\x00i")},
	}
	var seq uint64
	for _, p := range pairs {
		for _, e := range p {
			seq++
			if got := mustAppend(t, l, e); got[0].Duplicate || got[0].Seq != seq {
				t.Fatalf("source %q id %q = %+v, want stored as seq %d", e.Source, e.ID, got[0], seq)
			}
		}
	}
	a, b := ev("shop\x00y", "7"), ev("shop", "y\x007")
	got := mustAppend(t, l, a, b)
	if got[0].Duplicate || got[1].Duplicate || got[0].Seq != seq+1 || got[1].Seq != seq+2 {
		t.Fatalf("one batch of %q/%q and %q/%q = %+v, want two events stored", a.Source, a.ID, b.Source, b.ID, got)
	}
	// A repeat of each is answered with its own seq.
	for i, p := range pairs {
		got := mustAppend(t, l, p[1], p[0])
		want := []store.Appended{{Seq: uint64(2*i + 2), ID: p[1].ID, Duplicate: true}, {Seq: uint64(2*i + 1), ID: p[0].ID, Duplicate: true}}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("repeat of pair %d, item %d = %+v, want %+v", i, j, got[j], want[j])
			}
		}
	}
	if n := l.Bounds().Newest; n != seq+2 {
		t.Fatalf("newest = %d, want %d (repeats not stored)", n, seq+2)
	}
}

func testIdempotencyWrap(t *testing.T, newLog NewLog) {
	const capacity = 4
	l := newLog(t, capacity)
	mustAppend(t, l, batch(capacity, "w")...) // seqs 1..4, w-0 is seq 1
	if got := mustAppend(t, l, Ev("test.event", "w-0")); !got[0].Duplicate || got[0].Seq != 1 {
		t.Fatalf("repeat while buffered = %+v, want duplicate of 1", got[0])
	}
	mustAppend(t, l, Ev("test.event", "x")) // seq 5 overwrites seq 1 (w-0)
	if got := mustAppend(t, l, Ev("test.event", "w-1")); !got[0].Duplicate || got[0].Seq != 2 {
		t.Fatalf("w-1 still buffered: got %+v, want duplicate of 2", got[0])
	}
	if got := mustAppend(t, l, Ev("test.event", "w-0")); got[0].Duplicate || got[0].Seq != 6 {
		t.Fatalf("w-0 after overwrite = %+v, want stored anew as 6", got[0])
	}
}

func testIdempotencyWindow(t *testing.T, newLog NewLog) {
	const capacity = 4
	l := newLog(t, capacity)
	mustAppend(t, l, batch(capacity, "w")...) // seqs 1..4, w-0 is seq 1
	mustAppend(t, l, Ev("test.event", "x"))   // seq 5 drops seq 1 (w-0)
	if got := mustAppend(t, l, Ev("test.event", "w-0")); !got[0].Duplicate || got[0].Seq != 1 {
		t.Fatalf("w-0 after overwrite, within the window = %+v, want duplicate of 1", got[0])
	}
	if _, err := l.Get(context.Background(), 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(1) after overwrite = %v, want ErrNotFound", err)
	}
	// A batch mixing a repeat with new events stores the new ones only.
	got := mustAppend(t, l, Ev("test.event", "y"), Ev("test.event", "w-2"), Ev("test.event", "z"))
	want := []store.Appended{{Seq: 6, ID: "y"}, {Seq: 3, ID: "w-2", Duplicate: true}, {Seq: 7, ID: "z"}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mixed batch item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if b := l.Bounds(); b.Newest != 7 || b.Oldest != 4 {
		t.Fatalf("bounds = %+v, want 4..7", b)
	}
}

func testPaging(t *testing.T, newLog NewLog) {
	l := newLog(t, 1000)
	const n = 257
	mustAppend(t, l, batch(n, "p")...)
	seen := map[uint64]bool{}
	after := uint64(0)
	for range n {
		p, err := l.Read(context.Background(), after, 10, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) == 0 {
			break
		}
		for _, r := range p.Records {
			if seen[r.Seq] || r.Seq <= after {
				t.Fatalf("seq %d returned twice or out of order (after %d)", r.Seq, after)
			}
			seen[r.Seq] = true
		}
		if p.Next != p.Records[len(p.Records)-1].Seq {
			t.Fatalf("next = %d, want last returned seq %d", p.Next, p.Records[len(p.Records)-1].Seq)
		}
		after = p.Next
	}
	if len(seen) != n {
		t.Fatalf("paging saw %d events, want %d", len(seen), n)
	}
	p, err := l.Read(context.Background(), after, 10, nil, nil)
	if err != nil || len(p.Records) != 0 || p.Next != n || p.Gap != nil {
		t.Fatalf("read at end = %+v, %v; want empty page with next %d", p, err, n)
	}
}

func testFilter(t *testing.T, newLog NewLog) {
	l := newLog(t, 100)
	types := []string{"order.created", "order.item.added", "user.created", "order.paid", "billing.invoice-paid"}
	for i, typ := range types {
		mustAppend(t, l, Ev(typ, fmt.Sprint(i)))
	}
	cases := map[string][]uint64{
		"order.*":      {1, 4},
		"order.>":      {1, 2, 4},
		"*.created":    {1, 3},
		">":            {1, 2, 3, 4, 5},
		"billing.*":    {5},
		"nothing.here": nil,
	}
	for pat, want := range cases {
		f, err := store.ParseFilter([]string{pat})
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.Read(context.Background(), 0, 100, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, r := range p.Records {
			got = append(got, r.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("filter %q: got %v, want %v", pat, got, want)
		}
		if p.Next != 5 {
			t.Errorf("filter %q: next = %d, want 5 (everything examined)", pat, p.Next)
		}
	}
	// A limit reached under a filter stops next at the last match.
	f, _ := store.ParseFilter([]string{"order.>"})
	p, _ := l.Read(context.Background(), 0, 2, f, nil)
	if len(p.Records) != 2 || p.Next != 2 {
		t.Fatalf("limited filtered read = %d records, next %d; want 2, 2", len(p.Records), p.Next)
	}
}

func testGap(t *testing.T, newLog NewLog) {
	l := newLog(t, 10)
	for _, e := range batch(25, "g") { // 16..25 remain
		mustAppend(t, l, e)
	}
	b := l.Bounds()
	if b.Oldest != 16 || b.Newest != 25 {
		t.Fatalf("bounds = %+v, want 16..25", b)
	}
	p, err := l.Read(context.Background(), 3, 100, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap == nil || p.Gap.From != 4 || p.Gap.To != 15 {
		t.Fatalf("gap = %+v, want 4..15", p.Gap)
	}
	if len(p.Records) != 10 || p.Records[0].Seq != 16 || p.Next != 25 {
		t.Fatalf("records %d from %d, next %d; want 10 from 16, next 25", len(p.Records), p.Records[0].Seq, p.Next)
	}
	p, _ = l.Read(context.Background(), 15, 100, nil, nil)
	if p.Gap != nil {
		t.Fatalf("after = oldest-1 must not report a gap, got %+v", p.Gap)
	}
}

func testGet(t *testing.T, newLog NewLog) {
	l := newLog(t, 3)
	for _, e := range batch(5, "g") { // 3..5 remain
		mustAppend(t, l, e)
	}
	for _, seq := range []uint64{0, 1, 2, 6, 1 << 60} {
		if _, err := l.Get(context.Background(), seq); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%d) error = %v, want ErrNotFound", seq, err)
		}
	}
	for seq := uint64(3); seq <= 5; seq++ {
		r, err := l.Get(context.Background(), seq)
		if err != nil || r.Seq != seq || r.ID != fmt.Sprintf("g-%d", seq-1) {
			t.Errorf("Get(%d) = %+v, %v", seq, r, err)
		}
	}
}

func testWait(t *testing.T, newLog NewLog) {
	l := newLog(t, 10)
	ch := l.Wait(0)
	select {
	case <-ch:
		t.Fatal("Wait(0) on an empty log is already closed")
	default:
	}
	mustAppend(t, l, Ev("a.a", "1"))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait(0) not closed after an append")
	}
	select {
	case <-l.Wait(0):
	default:
		t.Fatal("Wait below newest must be closed at once")
	}
}

func testConcurrent(t *testing.T, newLog NewLog, batches int) {
	const writers, per = 8, 5
	total := uint64(writers * batches * per)
	l := newLog(t, int(total))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers+4)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				out, err := l.Append(ctx, batch(per, fmt.Sprintf("c%d-%d", w, b)), nil)
				if err != nil {
					errs <- err
					return
				}
				for i := 1; i < len(out); i++ {
					if out[i].Seq != out[i-1].Seq+1 {
						errs <- fmt.Errorf("batch seqs not consecutive: %+v", out)
						return
					}
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			after := uint64(0)
			for after < total {
				p, err := l.Read(ctx, after, 64, nil, nil)
				if err != nil {
					errs <- err
					return
				}
				if p.Gap != nil {
					errs <- fmt.Errorf("unexpected gap %+v", p.Gap)
					return
				}
				for _, r := range p.Records {
					if r.Seq != after+1 {
						errs <- fmt.Errorf("reader saw seq %d after %d", r.Seq, after)
						return
					}
					after = r.Seq
				}
				if len(p.Records) == 0 {
					select {
					case <-l.Wait(after):
					case <-time.After(10 * time.Second):
						errs <- fmt.Errorf("reader stuck at %d", after)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := l.Bounds().Newest; n != total {
		t.Fatalf("newest = %d, want %d", n, total)
	}
}

func testClose(t *testing.T, newLog NewLog) {
	l := newLog(t, 10)
	mustAppend(t, l, Ev("a.a", "1"))
	ch := l.Wait(1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake a waiter")
	}
	if _, err := l.Append(context.Background(), []store.Event{Ev("a.a", "2")}, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// testEmptyAppend: appending nothing stores nothing and answers at once,
// well inside a deadline (a backend must not wait for an answer that
// never comes).
func testEmptyAppend(t *testing.T, newLog NewLog) {
	l := newLog(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := l.Append(ctx, nil, nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("Append(nothing) = %v, %v; want nothing and no error", out, err)
	}
	if b := l.Bounds(); b.Newest != 0 {
		t.Fatalf("newest = %d after appending nothing", b.Newest)
	}
}
