package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRedactArgs(t *testing.T) {
	in := []string{"eventgate", "--api-key", "k1", "--api-key=k2", "-api-key", "k3", "--addr", "127.0.0.1:0",
		"--nats-creds", "/etc/nats.creds", "--encryption-key=abc", "--webhook-token", "t", "--some-secret=s", "--token-secret", "hs", "--token-secret=hs", "--api-key"}
	want := []string{"eventgate", "--api-key", "REDACTED", "--api-key=REDACTED", "-api-key", "REDACTED", "--addr", "127.0.0.1:0",
		"--nats-creds", "REDACTED", "--encryption-key=REDACTED", "--webhook-token", "REDACTED", "--some-secret=REDACTED", "--token-secret", "REDACTED", "--token-secret=REDACTED", "--api-key"}
	if got := redactArgs(in); !slices.Equal(got, want) {
		t.Fatalf("redactArgs\n got %q\nwant %q", got, want)
	}
	if in[2] != "k1" {
		t.Fatal("redactArgs changed its input")
	}
}

// TestGatewayProcess is no test of its own: TestPprofCmdlineRedactsSecrets
// runs the test binary again with it to get a gateway process whose
// os.Args hold a secret, as a real one's do.
func TestGatewayProcess(t *testing.T) {
	if os.Getenv("EVENTGATE_TEST_PROCESS") != "1" {
		t.Skip("runs only as TestPprofCmdlineRedactsSecrets's child")
	}
	i := slices.Index(os.Args, "--")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[i+1:], func(string) string { return "" }, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(2)
	}
}

// /debug/pprof/cmdline must not show --api-key values.
func TestPprofCmdlineRedactsSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGatewayProcess$", "--",
		"--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0", "--log-format", "json",
		"--api-key", "s3cret-one", "--api-key=s3cret-two")
	cmd.Env = append(os.Environ(), "EVENTGATE_TEST_PROCESS=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "pprof listening" {
				addrs <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("gateway process: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("the gateway process did not stop on SIGTERM")
		}
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		exited <- err
		t.Fatalf("the gateway process ended before serving pprof: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no pprof line in 30s")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := strings.ReplaceAll(string(body), "\x00", " ")
	if resp.StatusCode != http.StatusOK || strings.Contains(got, "s3cret") ||
		!strings.Contains(got, "--api-key REDACTED") || !strings.Contains(got, "--api-key=REDACTED") {
		t.Fatalf("cmdline answered %d: %q", resp.StatusCode, got)
	}
}
