package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/internal/gatewaytest"
)

// startEventgate runs the real router, hub and dispatcher over a ring in
// this process (the tool only sees its URL, as with --url) and stops them
// at cleanup.
func startEventgate(tb testing.TB) *server {
	tb.Helper()
	return &server{target: targetEventgate, url: gatewaytest.Ring(tb, 1<<16), stop: func() {}}
}

// spawn starts a baseline as a sibling process (this test binary, through
// TestMain) and stops it at cleanup.
func spawn(tb testing.TB, target string) *server {
	tb.Helper()
	s, err := startServer(tb.Context(), targetFlags{target: target}, &builder{dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.stop)
	return s
}

func TestSmokeIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("load smoke test")
	}
	for _, s := range []*server{startEventgate(t), spawn(t, targetBare)} {
		for _, batch := range []int{1, 100} {
			// 200 requests, or 10 s on a box too busy for that: a fixed
			// half second once passed with no answer at all under load.
			r, err := runIngest(t.Context(), s, ingestConfig{clients: 4, batch: batch, duration: 10 * time.Second, maxReqs: 200})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s batch %d: %s", s.target, batch, r)
			if r.events <= 0 || len(r.statuses) != 1 || r.statuses["202"] == 0 {
				t.Errorf("%s batch %d: %s", s.target, batch, r)
			}
		}
	}
}

func TestSmokeFanout(t *testing.T) {
	if testing.Short() {
		t.Skip("load smoke test")
	}
	servers := []*server{startEventgate(t), spawn(t, targetBareHub)}
	if _, err := centrifugoBinary(); err == nil {
		servers = append(servers, spawn(t, targetCentrifugo))
	}
	for _, s := range servers {
		r, err := runFanout(t.Context(), s, fanoutConfig{subs: 10, rate: 500, duration: time.Second, grace: 5 * time.Second, p99Limit: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", s.target, r)
		if r.lost+r.dup+r.reordered != 0 || r.cut != 0 || r.delivered <= 0 {
			t.Errorf("%s: %s", s.target, r)
		}
	}
}

func TestSmokeWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("load smoke test")
	}
	s := startEventgate(t)
	for _, cfg := range []webhookConfig{
		{receivers: 2, events: 300, grace: 10 * time.Second},
		{receivers: 1, rate: 200, duration: 500 * time.Millisecond, grace: 10 * time.Second},
	} {
		r, err := runWebhook(t.Context(), s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", r)
		if r.missing != 0 || r.dup != 0 || r.badSig != 0 || r.deliveries != r.published*cfg.receivers {
			t.Errorf("%+v: %s", cfg, r)
		}
	}
}

// TestCompareCommand drives the command line: compare spawns both
// baselines (eventgate itself needs a go build, which the other tests
// replace with an in-process server) and prints medians and a ratio.
func TestCompareCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("load smoke test")
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"compare", "ingest", "--targets", "bare,bare", "--duration", "300ms", "--clients", "2", "--runs", "2"}, &out)
	if err != nil {
		t.Fatal(err, out.String())
	}
	for _, want := range []string{"run 1 bare", "run 2 bare", "median bare", "ratio  bare/bare = "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "http://192.168.1.1"} {
		if err := checkLoopback(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80/x"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}
