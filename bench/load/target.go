package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Targets the tool can measure.
const (
	targetEventgate  = "eventgate"
	targetBare       = "bare"
	targetBareHub    = "bare-hub"
	targetCentrifugo = "centrifugo"
)

// targetFlags say which server to measure and how to start it.
type targetFlags struct {
	target     string
	url        string // a running server; nothing is spawned
	pid        int    // the running server's pid, for its CPU time
	bin        string // a built eventgate binary (default: go build the repo)
	debugAddr  string // passed to a spawned eventgate
	bufferSize int    // passed to a spawned eventgate
	logDir     string // where spawned servers' output goes (default: discarded)

	natsURL      string // eventgate-nats-url: the NATS servers, comma-separated
	natsReplicas int    // eventgate-nats-url: passed as --nats-replicas
	natsReset    bool   // eventgate-nats-url: delete eventgate's streams first
}

// server is a target being measured: its base URL and, when this tool
// spawned it, its process (for CPU time) and how to stop it. A group of
// gateways on one NATS (scaleout) is its first gateway with the others as
// peers: publishers and stream clients spread over all of them, and its
// CPU time is theirs added up.
type server struct {
	target string
	url    string
	pid    int
	stop   func() // kills the process and waits; a no-op for --url
	peers  []*server
}

// cpu returns the server's CPU time so far (with its peers'), 0 when
// unknown.
func (s *server) cpu() cpuTime {
	c := procCPU(s.pid)
	for _, p := range s.peers {
		c += p.cpu()
	}
	return c
}

// urlFor returns the base URL of the gateway that the i-th client (a
// publish, a stream subscriber) uses: the gateways of a group in turn.
func (s *server) urlFor(i int) string {
	if i %= len(s.peers) + 1; i > 0 {
		return s.peers[i-1].url
	}
	return s.url
}

// builder builds the eventgate binary once per run of the tool.
type builder struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// newTempBuilder makes the temporary directory of one run of the tool and
// a builder using it; done removes the directory and all it holds.
func newTempBuilder() (b *builder, done func(), err error) {
	dir, err := os.MkdirTemp("", "eventgate-load-")
	if err != nil {
		return nil, nil, err
	}
	return &builder{dir: dir}, func() { _ = os.RemoveAll(dir) }, nil
}

// eventgate returns the path of a fresh build of the repository's main
// package (go build, so the go.mod and default.pgo in force are used).
func (b *builder) eventgate(ctx context.Context) (string, error) {
	b.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(b.dir, "eventgate")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	return b.path, b.err
}

// repoRoot finds the directory of eventgate's go.mod, upwards from the
// working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/eventgate/eventgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("eventgate's go.mod not found above the working directory: use --bin or --url")
		}
		dir = parent
	}
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer starts (or, with --url, names) the target. The caller must
// call stop (idempotent). Spawned processes get SIGINT on stop, SIGKILL 5 s
// later, and SIGKILL if this tool dies first (Pdeathsig); an embedded NATS
// server's data directory is removed once its process has exited (and is
// under the tool's temporary directory, removed on exit, in any case).
func startServer(ctx context.Context, tf targetFlags, b *builder) (*server, error) {
	if tf.url != "" {
		if err := checkLoopback(tf.url); err != nil {
			return nil, err
		}
		return &server{target: tf.target, url: strings.TrimSuffix(tf.url, "/"), pid: tf.pid, stop: func() {}}, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var name string
	var args []string
	health := "/healthz"
	cleanup := func() {}
	kind, bin, _ := strings.Cut(tf.target, ":") // eventgate:PATH is a given binary
	if bin == "" {
		bin = tf.bin
	}
	switch {
	case isEventgate(kind):
		name = bin
		if name == "" {
			if name, err = b.eventgate(ctx); err != nil {
				return nil, err
			}
		}
		var dataDir string
		if dataDir, cleanup, err = prepareEventgate(ctx, kind, tf, b.dir); err != nil {
			return nil, err
		}
		args = eventgateArgs(kind, tf, addr, dataDir)
		health = "/readyz" // with NATS: once the store is ready
	case kind == targetBare, kind == targetBareHub:
		if name, err = os.Executable(); err != nil {
			return nil, err
		}
		args = []string{"serve-" + tf.target, "--addr", addr}
	case kind == targetCentrifugo:
		if name, args, err = centrifugoCommand(b.dir, addr); err != nil {
			return nil, err
		}
		health = "/health"
	default:
		return nil, fmt.Errorf("unknown target %q (want %s, each optionally :BINARY, bare, bare-hub or centrifugo)",
			tf.target, strings.Join(eventgateKinds, ", "))
	}
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if tf.logDir != "" {
		// One file per target and binary, every run appended.
		logName := kind + "-build.log" // a fresh go build
		if bin != "" {
			logName = kind + "-" + filepath.Base(bin) + ".log"
		}
		f, err := os.OpenFile(filepath.Join(tf.logDir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			cancel()
			cleanup()
			return nil, err
		}
		defer f.Close() // the child has its own descriptor
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		cancel()
		cleanup()
		return nil, fmt.Errorf("start %s: %w", tf.target, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() { cancel(); <-exited; cleanup() }
	s := &server{target: kind, url: "http://" + addr, pid: cmd.Process.Pid, stop: sync.OnceFunc(stop)}
	if err := waitHealthy(ctx, s.url+health, exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not come up: %w", tf.target, err)
	}
	return s, nil
}

// waitHealthy polls url until it answers 200, the process exits or 30 s
// pass (polling is how one waits on another process).
func waitHealthy(ctx context.Context, url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("not healthy after 30s")
}

// checkLoopback refuses a URL whose host is not a loopback address: this
// tool sends load only to this machine.
func checkLoopback(raw string) error {
	host := raw
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s: only loopback targets are allowed", raw)
}
