package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestAccessFlagsAndTheirEnvTwins(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, env(), &out); !errors.Is(err, errHelp) {
		t.Fatalf("run --help = %v", err)
	}
	for _, f := range [][2]string{{"ingest-burst", "GATEWAY_INGEST_BURST"}, {"allowed-hosts", "GATEWAY_ALLOWED_HOSTS"}} {
		if !strings.Contains(out.String(), "--"+f[0]+" ") || !strings.Contains(out.String(), "["+f[1]+"]") {
			t.Errorf("--help lacks --%s or [%s]", f[0], f[1])
		}
	}
	c, err := parseConfig(nil, env("GATEWAY_INGEST_BURST", "50", "GATEWAY_ALLOWED_HOSTS", "gw.example.com, gw2.example.com", "GATEWAY_INGEST_RATE", "10"), io.Discard)
	if err != nil || c.IngestBurst != 50 || !slices.Equal(c.AllowedHosts, []string{"gw.example.com", "gw2.example.com"}) {
		t.Fatalf("from env: %+v, %v", c, err)
	}
	c, err = parseConfig([]string{"--allowed-hosts", "a.example", "--allowed-hosts=b.example"}, env("GATEWAY_ALLOWED_HOSTS", "ignored.example"), io.Discard)
	if err != nil || !slices.Equal(c.AllowedHosts, []string{"a.example", "b.example"}) {
		t.Fatalf("flags over env: %+v, %v", c.AllowedHosts, err)
	}
	for _, bad := range [][]string{{"--ingest-burst", "-1"}, {"--allowed-hosts", "http://x.example/"}, {"--allowed-hosts", "user@x.example"}} {
		if _, err := parseConfig(bad, env(), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// run tells the API where it listens: on the default loopback address a
// rebinding Host is refused, and --allowed-hosts adds names.
func TestRunRefusesForeignHostsOnLoopback(t *testing.T) {
	base, _, _ := startRun(t, "--allowed-hosts", "gw.example.com")
	for host, want := range map[string]int{"rebind.attacker.example": 421, "gw.example.com": 200, "localhost:1": 200, strings.TrimPrefix(base, "http://"): 200} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/events", nil)
		req.Host = host
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
