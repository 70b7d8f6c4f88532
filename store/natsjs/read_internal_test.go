package natsjs

import (
	"context"
	"encoding/json"
	"strconv"
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
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Open(ctx, Config{Conn: nc, Stream: "READ_NEWEST", Prefix: "rn", Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	evs := make([]store.Event, 6)
	for i := range evs {
		evs[i] = store.Event{ID: "evt_" + strconv.Itoa(i), Type: "a.b", Source: "test", Time: time.Now(), Data: json.RawMessage(`{}`)}
	}
	if _, err := l.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.Filter{nil, mustFilter(t, "a.b", "x.>")} {
		l.newest.Store(2) // the watcher is behind: events 3-6 are stored, newest says 2
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

func mustFilter(t *testing.T, patterns ...string) store.Filter {
	t.Helper()
	f, err := store.ParseFilter(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
