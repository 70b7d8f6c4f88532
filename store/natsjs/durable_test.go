package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/eventgate/eventgate/store/storetest"
	"github.com/nats-io/nats.go/jetstream"
)

func events(prefix string, n int) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		out[i] = storetest.Ev("order.created", fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func readAll(tb testing.TB, l store.Log) []store.Record {
	tb.Helper()
	var all []store.Record
	after := uint64(0)
	for {
		p, err := l.Read(context.Background(), after, 100, nil, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if len(p.Records) == 0 {
			return all
		}
		all = append(all, p.Records...)
		after = p.Next
	}
}

// TestRestartKeepsEventsSeqsAndEpoch closes the log and the embedded server
// and opens both again on the same data dir.
func TestRestartKeepsEventsSeqsAndEpoch(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := natsjs.Config{Stream: "RESTART", Prefix: "restart"}

	srv := startServer(t, dir)
	cfg.Conn = connect(t, srv)
	l := mustOpen(t, cfg)
	if _, err := l.Append(ctx, events("a", 3), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, events("b", 1), nil); err != nil {
		t.Fatal(err)
	}
	before, recs := l.Bounds(), readAll(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Conn.Close()
	srv.Shutdown()

	srv = startServer(t, dir)
	cfg.Conn = connect(t, srv)
	l = mustOpen(t, cfg)
	if after := l.Bounds(); after != before || after.Newest != 4 {
		t.Fatalf("bounds after restart = %+v, want %+v (1..4)", after, before)
	}
	again := readAll(t, l)
	if len(again) != len(recs) {
		t.Fatalf("read %d records after restart, want %d", len(again), len(recs))
	}
	for i := range recs {
		if again[i].Seq != recs[i].Seq || again[i].ID != recs[i].ID || string(again[i].JSON) != string(recs[i].JSON) || again[i].StoredAt != recs[i].StoredAt {
			t.Fatalf("record %d after restart = %+v, want %+v", i, again[i], recs[i])
		}
	}
	// The duplicate window outlives the restart; new events go on from 5.
	got, err := l.Append(ctx, append(events("a", 1), storetest.Ev("order.created", "c")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Duplicate || got[0].Seq != 1 || got[1].Seq != 5 {
		t.Fatalf("append after restart = %+v, want a-0 duplicate of 1 and c stored as 5", got)
	}

	// A stream made anew is a new epoch.
	js, _ := jetstream.New(cfg.Conn)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, cfg.Stream); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, cfg)
	if b := l.Bounds(); b.Epoch == before.Epoch || b.Newest != 0 {
		t.Fatalf("recreated stream bounds = %+v, want empty with an epoch other than %q", b, before.Epoch)
	}
}

// TestBatchAllOrNothing: a batch the server cannot take whole (one event
// over the connection's max payload) stores none of its events.
func TestBatchAllOrNothing(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "ATOMIC", Prefix: "atomic", Memory: true})
	ctx := context.Background()
	if _, err := l.Append(ctx, events("ok", 2), nil); err != nil {
		t.Fatal(err)
	}
	b := events("bad", 3)
	b[1].Data = []byte(`"` + strings.Repeat("x", int(nc.MaxPayload())) + `"`)
	if _, err := l.Append(ctx, b, nil); !errors.Is(err, store.ErrEventTooLarge) {
		t.Fatalf("append of a batch with an oversized event = %v, want ErrEventTooLarge", err)
	}
	if got, err := l.Append(ctx, events("after", 2), nil); err != nil || got[0].Seq != 3 || got[1].Seq != 4 {
		t.Fatalf("next batch = %+v, %v; want seqs 3, 4 (nothing of the failed batch stored)", got, err)
	}
	for _, r := range readAll(t, l) {
		if strings.HasPrefix(r.ID, "bad") {
			t.Fatalf("event %s of the failed batch was stored as %d", r.ID, r.Seq)
		}
	}
}

// TestBatchRepeatingStoredEventStaysAtomic: a batch that repeats an event
// stored earlier stores its new events with consecutive seqs, the repeats
// not at all.
func TestBatchRepeatingStoredEventStaysAtomic(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "MIXED", Prefix: "mixed", Memory: true})
	ctx := context.Background()
	first, err := l.Append(ctx, events("a", 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	retry := append(events("a", 3), events("n", 2)...) // a retried batch, grown
	got, err := l.Append(ctx, retry, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !got[i].Duplicate || got[i].Seq != first[i].Seq {
			t.Fatalf("repeat %d = %+v, want duplicate of %d", i, got[i], first[i].Seq)
		}
	}
	if got[3].Duplicate || got[4].Duplicate || got[3].Seq != 4 || got[4].Seq != 5 {
		t.Fatalf("new events = %+v, %+v; want 4, 5", got[3], got[4])
	}
	if n := l.Bounds().Newest; n != 5 {
		t.Fatalf("newest = %d, want 5", n)
	}
}

func TestReady(t *testing.T) {
	srv := startServer(t, t.TempDir())
	nc := connect(t, srv)
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "READY", Prefix: "ready", Memory: true})
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready = %v, want nil", err)
	}
	nc.Close()
	if err := l.Ready(); err == nil {
		t.Fatal("Ready after the connection closed = nil")
	}
	_ = l.Close()
	if err := l.Ready(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ready after Close = %v, want ErrClosed", err)
	}
}

// TestEscapedIDsRoundTrip: ids that JSON escapes come back as given.
func TestEscapedIDsRoundTrip(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "IDS", Prefix: "ids", Memory: true})
	ids := []string{`quo"te`, `back\slash`, "caf\u00e9", "line\nbreak"}
	for _, id := range ids {
		got, err := l.Append(context.Background(), []store.Event{storetest.Ev("a.b", id)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := l.Get(context.Background(), got[0].Seq)
		if err != nil || r.ID != id || r.Type != "a.b" {
			t.Fatalf("Get(%d) = %+v, %v; want id %q", got[0].Seq, r, err, id)
		}
	}
}

// TestLargerBatchWithRaisedServerLimit: a server started with a larger
// MaxBatch takes batches up to it atomically.
func TestLargerBatchWithRaisedServerLimit(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir(), MaxBatch: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	l := mustOpen(t, natsjs.Config{Conn: connect(t, srv), Stream: "BIG", Prefix: "big", Memory: true, MaxBatch: 2000})
	got, err := l.Append(context.Background(), events("big", 1500), nil)
	if err != nil || len(got) != 1500 || got[1499].Seq != 1500 {
		t.Fatalf("append of 1500 = %d results, %v", len(got), err)
	}
	if _, err := l.Append(context.Background(), events("huge", 2001), nil); !errors.Is(err, store.ErrBatchTooLarge) {
		t.Fatalf("append of 2001 = %v, want ErrBatchTooLarge", err)
	}
}
