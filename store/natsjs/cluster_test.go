package natsjs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
)

// startCluster starts a three-node JetStream cluster on 127.0.0.1 and
// shuts it down at cleanup.
func startCluster(t *testing.T) [3]*natsembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := natsembed.StartCluster(ctx, "test", []string{t.TempDir(), t.TempDir(), t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srv {
		t.Cleanup(s.Shutdown)
	}
	return [3]*natsembed.Server(srv)
}

// openR3 opens the replicated log through s, retrying while the cluster
// elects its leaders (servers are separate actors: poll, with a deadline).
func openR3(t *testing.T, s *natsembed.Server) *natsjs.Log {
	t.Helper()
	cfg := natsjs.Config{Conn: connect(t, s), Stream: "R3", Prefix: "r3", Replicas: 3, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := natsjs.Open(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("open R3 stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // across servers: poll
	}
}

// appendEventually appends evs through l, retrying while a leader is
// (re-)elected.
func appendEventually(t *testing.T, l store.Log, evs []store.Event) []store.Appended {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := l.Append(context.Background(), evs, nil)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("append: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // across servers: poll
	}
}

// readThrough reads l from after until it has seen seq last, waiting on
// l.Wait between pages, bounded by a deadline.
func readThrough(t *testing.T, l store.Log, after, last uint64) []store.Record {
	t.Helper()
	var got []store.Record
	deadline := time.After(30 * time.Second)
	for after < last {
		p, err := l.Read(context.Background(), after, 100, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Gap != nil {
			t.Fatalf("unexpected gap %+v", p.Gap)
		}
		got = append(got, p.Records...)
		if p.Next > after {
			after = p.Next
			continue
		}
		select {
		case <-l.Wait(after):
		case <-deadline:
			_, gerr := l.Get(context.Background(), after+1)
			t.Fatalf("read stuck at %d, want %d; bounds %+v; get: %v", after, last, l.Bounds(), gerr)
		}
		// A replica may trail the watcher briefly: look again shortly.
		select {
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatalf("read stuck at %d, want %d", after, last)
		}
	}
	return got
}

func TestClusterThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	srv := startCluster(t)
	a := openR3(t, srv[0])
	c := openR3(t, srv[2])
	if a.Bounds().Epoch != c.Bounds().Epoch {
		t.Fatalf("epochs differ: %q on A, %q on C", a.Bounds().Epoch, c.Bounds().Epoch)
	}

	check := func(from uint64, appended []store.Appended) {
		t.Helper()
		recs := readThrough(t, c, from, appended[len(appended)-1].Seq)
		if len(recs) != len(appended) {
			t.Fatalf("C read %d events, want %d", len(recs), len(appended))
		}
		for i, r := range recs {
			if r.Seq != appended[i].Seq || r.ID != appended[i].ID {
				t.Fatalf("C read #%d = seq %d id %s, want seq %d id %s", i, r.Seq, r.ID, appended[i].Seq, appended[i].ID)
			}
		}
	}

	var appended []store.Appended
	for b := range 10 {
		appended = append(appended, appendEventually(t, a, events(fmt.Sprintf("x%d", b), 5))...)
	}
	for i, ap := range appended {
		if ap.Seq != uint64(i+1) {
			t.Fatalf("append #%d got seq %d", i, ap.Seq)
		}
	}
	check(0, appended)

	// One node of three stops: appends through A and reads through C go on.
	srv[1].Shutdown()
	var more []store.Appended
	for b := range 10 {
		more = append(more, appendEventually(t, a, events(fmt.Sprintf("y%d", b), 5))...)
	}
	check(50, more)
	if more[0].Seq != 51 || more[len(more)-1].Seq != 100 {
		t.Fatalf("appends after the stop got seqs %d..%d, want 51..100", more[0].Seq, more[len(more)-1].Seq)
	}
}
