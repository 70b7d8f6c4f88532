package natsjs

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
)

// TestReadNeverPassesNewest: a read can return events the Log's newest
// has not reached yet (another gateway appended them and the watcher is
// behind). The page then says they are stored (Newest >= Next) and newest
// moves up to them, so a reader whose cursor they carried is never ahead
// of newest: a wake-up for an event below its cursor would otherwise look
// like nothing new, which a stream takes for the log closing.
func TestReadNeverPassesNewest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := openInternal(t, ctx, Config{Stream: "READ_NEWEST", Prefix: "rn", Memory: true})
	evs := make([]store.Event, 6)
	for i := range evs {
		evs[i] = store.Event{ID: "evt_" + strconv.Itoa(i), Type: "a.b", Source: "test", Time: time.Now(), Data: json.RawMessage(`{}`)}
	}
	if _, err := l.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.Filter{nil, mustFilter(t, "a.b", "x.>")} {
		l.newest.Store(2) // the watcher is behind: events 3-6 are stored, newest says 2
		if l.Wait(2) == store.Ready && l.Bounds().Newest <= 2 {
			t.Fatal("Wait(2) ready while the open log's newest is 2: a stream takes that for the log closed")
		}
		p, err := l.Read(ctx, 0, 10, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) == 0 || p.Next < 6 {
			t.Fatalf("filter %v: read %d records to %d, want 6 (the stored ones)", f, len(p.Records), p.Next)
		}
		if p.Newest < p.Next || l.Bounds().Newest < p.Next {
			t.Errorf("filter %v: read to %d, but the page says newest %d and the log %d", f, p.Next, p.Newest, l.Bounds().Newest)
		}
	}
}

// openInternal opens a Log with cfg on a new embedded server of its own,
// all of it closed at cleanup.
func openInternal(t *testing.T, ctx context.Context, cfg Config) *Log {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg.Conn = nc
	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func mustFilter(t *testing.T, patterns ...string) store.Filter {
	t.Helper()
	f, err := store.ParseFilter(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFollowingReadsComeFromTheTail: once an Append has answered, its
// events are in the tail, and a reader following the log reads them
// there, filtered or not, without asking JetStream (here, direct gets go
// nowhere); a read from further back than the tail still asks it.
func TestFollowingReadsComeFromTheTail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := openInternal(t, ctx, Config{Stream: "TAIL_READS", Prefix: "tr", Memory: true, TailEvents: 4})
	for i := range 6 {
		typ := "a.b"
		if i%2 == 1 {
			typ = "c.d"
		}
		ev := store.Event{ID: "evt_" + strconv.Itoa(i), Type: typ, Source: "test", Time: time.Now(), Data: json.RawMessage(`{}`)}
		if _, err := l.Append(ctx, []store.Event{ev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := l.Tail(); n != 4 {
		t.Fatalf("the tail holds %d events after the Appends answered, want 4", n)
	}
	l.getSubj = "$JS.API.DIRECT.GET.NOWHERE" // JetStream reads fail from here on
	short, shortCancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer shortCancel()
	p, err := l.Read(short, 2, 10, nil, nil)
	if err != nil || len(p.Records) != 4 || p.Records[0].Seq != 3 || p.Next != 6 {
		t.Fatalf("read after 2: %d records to %d, err %v; want 3-6 from the tail", len(p.Records), p.Next, err)
	}
	if !strings.HasPrefix(string(p.Records[0].JSON), `{"seq":3,`) {
		t.Fatalf("record 3 = %s", p.Records[0].JSON)
	}
	p, err = l.Read(short, 2, 10, mustFilter(t, "c.>"), nil)
	if err != nil || len(p.Records) != 2 || p.Records[1].Seq != 6 || p.Next != 6 {
		t.Fatalf("filtered read after 2: %+v, err %v; want 4 and 6 from the tail", p.Records, err)
	}
	if _, err := l.Read(short, 0, 10, nil, nil); err == nil {
		t.Fatal("a read from before the tail was served without JetStream")
	}
}

// TestWatcherStoppedIsNotReady: a watcher that stops while the Log is
// open (its iterator closed under it) makes the Log report itself not
// ready, and Appends no longer wait for it: they answer, and newest
// moves, without it.
func TestWatcherStoppedIsNotReady(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := openInternal(t, ctx, Config{Stream: "WATCHER_STOPS", Prefix: "ws", Memory: true})
	if err := l.Ready(); err != nil {
		t.Fatalf("an open Log: Ready = %v", err)
	}
	l.iter.Stop()
	<-l.done
	if err := l.Ready(); err == nil {
		t.Fatal("the watcher stopped, and Ready = nil")
	}
	ev := store.Event{ID: "evt_after", Type: "a.b", Source: "test", Time: time.Now(), Data: json.RawMessage(`{}`)}
	out, err := l.Append(ctx, []store.Event{ev}, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Append without the watcher: %v, %v", out, err)
	}
	if n := l.Bounds().Newest; n < out[0].Seq {
		t.Fatalf("newest %d after an Append stored %d", n, out[0].Seq)
	}
}
