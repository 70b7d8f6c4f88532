package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func TestEventgateArgs(t *testing.T) {
	tf := targetFlags{bufferSize: 5000, natsURL: "nats://127.0.0.1:4222,nats://127.0.0.1:4223", natsReplicas: 3}
	base := []string{"--addr", "127.0.0.1:9", "--allow-private-targets", "--log-format", "json", "--buffer-size", "5000"}
	for _, tc := range []struct {
		kind string
		want []string
	}{
		{targetEventgate, base},
		{targetEventgateNATS, append(slices.Clone(base), "--store", "nats", "--nats-embedded", "--data-dir", "/d")},
		{targetEventgateNATSURL, append(slices.Clone(base), "--store", "nats", "--nats-url", tf.natsURL, "--nats-replicas", "3")},
	} {
		if got := eventgateArgs(tc.kind, tf, "127.0.0.1:9", "/d"); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.kind, got, tc.want)
		}
	}
}

func TestCheckNATSURLs(t *testing.T) {
	for _, ok := range []string{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222, nats://localhost:4223"} {
		if err := checkNATSURLs(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "nats://127.0.0.1:4222,nats://10.1.1.1:4222", "nats://example.com:4222"} {
		if err := checkNATSURLs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSummariseStatuses(t *testing.T) {
	got := summariseStatuses(map[string]int{"202": 7, "500": 2, "error": 1})
	if want := "non-2xx 3 of 10 requests [202×7 500×2 error×1]"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// startNATS runs a JetStream server with file storage in this process, on
// a free loopback port, until cleanup.
func startNATS(tb testing.TB) *natsserver.Server {
	tb.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	ns.Start()
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server not ready")
	}
	return ns
}

// buildEventgate returns a builder holding a go build of the repository
// (a few seconds when cached) in a temporary directory.
func buildEventgate(tb testing.TB) *builder {
	tb.Helper()
	b := &builder{dir: tb.TempDir()}
	if _, err := b.eventgate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestNATSTargets spawns a built eventgate on embedded NATS, on a NATS
// server given by URL (twice: the second run resets the streams) and on the
// ring, and drives a short ingest run (batches: every answer 2xx) and a
// short backlog drain (three publishers) against each. It needs a go build
// of the repository (a few seconds when cached).
func TestNATSTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns eventgate")
	}
	b := buildEventgate(t)
	ns := startNATS(t)
	for _, tf := range []targetFlags{
		{target: targetEventgateNATS, bufferSize: 10000},
		{target: targetEventgateNATSURL, bufferSize: 10000, natsURL: ns.ClientURL(), natsReplicas: 1, natsReset: true},
		{target: targetEventgateNATSURL, bufferSize: 10000, natsURL: ns.ClientURL(), natsReplicas: 1, natsReset: true}, // again: reset
		{target: targetEventgate, bufferSize: 10000},
	} {
		s, err := startServer(t.Context(), tf, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := runIngest(t.Context(), s, ingestConfig{clients: 4, batch: 10, duration: time.Second})
		if err != nil {
			s.stop()
			t.Fatal(err)
		}
		t.Logf("%s ingest: %s", tf.target, r)
		if r.events <= 0 || len(r.statuses) != 1 || r.statuses["202"] == 0 {
			t.Errorf("%s ingest: %s", tf.target, r)
		}
		w, err := runWebhook(t.Context(), s, webhookConfig{receivers: 1, backlog: 250, publishers: 3, grace: 20 * time.Second})
		s.stop()
		s.stop() // idempotent
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s backlog: %s", tf.target, w)
		if w.missing != 0 || w.dup != 0 || w.badSig != 0 || w.deliveries != 250 || !w.backlog {
			t.Errorf("%s backlog: %s", tf.target, w)
		}
		if left, _ := filepath.Glob(filepath.Join(b.dir, "nats-data-*")); len(left) != 0 {
			t.Errorf("%s: data directories left after stop: %v", tf.target, left)
		}
	}
}

// TestNATSURLTargetNeedsURL: eventgate-nats-url without --nats-url, or
// with a remote one, is refused before anything starts.
func TestNATSURLTargetNeedsURL(t *testing.T) {
	b := &builder{dir: t.TempDir()}
	for _, u := range []string{"", "nats://192.0.2.1:4222"} {
		_, err := startServer(t.Context(), targetFlags{target: targetEventgateNATSURL, natsURL: u, bin: os.DevNull}, b)
		if err == nil || !strings.Contains(err.Error(), "nats-url") {
			t.Errorf("%q: err = %v", u, err)
		}
	}
}

// TestCompareNATSFlags: compare takes the NATS targets and flags.
func TestCompareNATSFlags(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags("webhook", true, []string{"--targets", "eventgate,eventgate-nats,eventgate-nats-url",
		"--nats-url", "nats://127.0.0.1:4222", "--nats-replicas", "3", "--nats-reset=false", "--backlog", "20000"}, &out)
	if err != nil {
		t.Fatal(err, out.String())
	}
	if !slices.Equal(o.targets, []string{"eventgate", "eventgate-nats", "eventgate-nats-url"}) ||
		o.tf.natsURL != "nats://127.0.0.1:4222" || o.tf.natsReplicas != 3 || o.tf.natsReset || o.webhook.backlog != 20000 {
		t.Errorf("%+v", o)
	}
}
