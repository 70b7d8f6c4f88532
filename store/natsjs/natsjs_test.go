package natsjs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/eventgate/eventgate/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer starts an embedded server storing under dir (no port) and
// shuts it down at cleanup.
func startServer(tb testing.TB, dir string) *natsembed.Server {
	tb.Helper()
	s, err := natsembed.Start(natsembed.Config{DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// connect opens an in-process connection to s, closed at cleanup.
func connect(tb testing.TB, s *natsembed.Server) *nats.Conn {
	tb.Helper()
	nc, err := s.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// mustOpen opens a log with cfg and closes it at cleanup.
func mustOpen(tb testing.TB, cfg natsjs.Config) *natsjs.Log {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := natsjs.Open(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

var streams atomic.Int64

// logsOn returns a storetest.NewLog that opens each log on a new stream
// (and subject prefix) over nc, deleted at cleanup.
func logsOn(nc *nats.Conn, memory bool) storetest.NewLog {
	return func(tb testing.TB, capacity int) store.Log {
		n := streams.Add(1)
		name := fmt.Sprintf("T%d", n)
		tb.Cleanup(func() {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = js.DeleteStream(ctx, name)
		})
		return mustOpen(tb, natsjs.Config{Conn: nc, Stream: name, Prefix: fmt.Sprintf("t%d", n), Memory: memory, MaxMsgs: int64(capacity)})
	}
}

// The NATS backend de-duplicates for JetStream's duplicate window, not for
// as long as an event is stored (see docs/NATS.md): the suite runs with
// DedupWindow.
// natsSemantics: JetStream de-duplicates for a window; every batch is a
// round trip (an atomic batch on file storage is staged on disk), so the
// concurrency test appends 25 batches per writer instead of 200.
var natsSemantics = storetest.Options{DedupWindow: true, ConcurrentBatches: 25}

func TestConformanceMemory(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	storetest.RunOptions(t, logsOn(nc, true), natsSemantics)
}

func TestConformanceFile(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	// nats-server removes an account's empty stream directory after the
	// last file stream is deleted, racing the next create ("could not
	// create storage directory"); one stream kept for the whole test keeps
	// the directory, as a real deployment always has its stream.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ANCHOR", Subjects: []string{"anchor"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	storetest.RunOptions(t, logsOn(nc, false), natsSemantics)
}

func TestWebhooksRegistry(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	storetest.RunWebhooks(t, func(tb testing.TB) store.Webhooks {
		l := logsOn(nc, true)(tb, 100).(*natsjs.Log)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := l.OpenWebhooks(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	})
}
