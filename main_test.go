package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env returns a getenv over the given pairs.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.BufferSize != 100000 || c.MaxBody != 1<<20 || c.MaxBatch != 1000 ||
		c.DeliveryTimeout != 10*time.Second || c.EndpointConcurrency != 8 || c.MaxRetrying != 10000 ||
		c.DisableAfter != 72*time.Hour || c.StreamQueue != 10000 || c.ShutdownTimeout != 30*time.Second || c.Store != "memory" {
		t.Fatalf("defaults = %+v", c)
	}
	var total time.Duration
	for _, d := range c.RetrySchedule {
		total += d
	}
	if len(c.RetrySchedule) != 7 || total != 27*time.Hour+35*time.Minute+5*time.Second {
		t.Fatalf("retry schedule = %v (%v in all)", c.RetrySchedule, total)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	c, err := parseConfig([]string{"--buffer-size", "50", "--api-key", "a", "--api-key", "b"},
		env("GATEWAY_BUFFER_SIZE", "999", "GATEWAY_MAX_BATCH", "7", "GATEWAY_MAX_BODY", "64KiB", "GATEWAY_API_KEYS", "x,y",
			"GATEWAY_RETRY_SCHEDULE", "1s, 2s", "GATEWAY_ADDR", "0.0.0.0:9", "GATEWAY_INSECURE", "true",
			"GATEWAY_WEBHOOK_ORIGIN", "events.example.com"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.BufferSize != 50 || c.MaxBatch != 7 || c.MaxBody != 64<<10 || strings.Join(c.APIKeys, ",") != "a,b" ||
		len(c.RetrySchedule) != 2 || c.Addr != "0.0.0.0:9" || !c.Insecure || c.WebhookOrigin != "events.example.com" {
		t.Fatalf("config = %+v (flags must win over env)", c)
	}
	c, err = parseConfig(nil, env("GATEWAY_API_KEYS", "x, y"), io.Discard)
	if err != nil || strings.Join(c.APIKeys, ",") != "x,y" {
		t.Fatalf("keys from env = %v, %v", c.APIKeys, err)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	cases := map[string][]string{
		"no key":               {"--addr", "0.0.0.0:8080"},
		"bad format":           {"--log-format", "xml"},
		"batch over buffer":    {"--buffer-size", "10", "--max-batch", "11"},
		"bad schedule":         {"--retry-schedule", "5s,soon"},
		"negative delay":       {"--retry-schedule", "-5s"},
		"bad size":             {"--max-body", "lots"},
		"unknown store":        {"--store", "redis"},
		"nats flags on memory": {"--nats-url", "nats://127.0.0.1:4222"},
		"embedded, no dir":     {"--store", "nats", "--nats-embedded"},
		"embedded and url":     {"--store", "nats", "--nats-embedded", "--data-dir", "/tmp/x", "--nats-url", "nats://127.0.0.1:4222"},
		"nats batch too big":   {"--store", "nats", "--max-batch", "5000", "--buffer-size", "10000"},
		"public debug":         {"--debug-addr", "0.0.0.0:6060"},
		"origin with a space":  {"--webhook-origin", "events example.com"},
		"origin with CR LF":    {"--webhook-origin", "a.example\r\nX-Evil: 1"},
		"stray argument":       {"serve"},
		"zero stream queue":    {"--stream-queue", "0"},
		"nonpositive timeout":  {"--delivery-timeout", "0s"},
		"unknown flag":         {"--nope"},
		"negative buffer size": {"--buffer-size", "-1"},
		"short encryption key": {"--store", "nats", "--nats-url", "nats://127.0.0.1:4222", "--encryption-key", "c2hvcnQ="},
		"key not base64":       {"--store", "nats", "--nats-url", "nats://127.0.0.1:4222", "--encryption-key", "not base64!"},
		"key on memory":        {"--encryption-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
	}
	for name, args := range cases {
		if _, err := parseConfig(args, env(), io.Discard); err == nil {
			t.Errorf("%s: %v accepted", name, args)
		}
	}
	_, err := parseConfig([]string{"--addr", "0.0.0.0:8080"}, env(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--insecure") || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("non-loopback refusal should say how to proceed: %v", err)
	}
	for _, ok := range [][]string{{"--addr", "0.0.0.0:8080", "--insecure"}, {"--addr", "0.0.0.0:8080", "--api-key", "k"}, {"--addr", "localhost:0"}, {"--addr", "[::1]:0"}} {
		if _, err := parseConfig(ok, env(), io.Discard); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
}

func TestHelpListsEveryFlagWithItsEnvTwin(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, env(), &out); !errors.Is(err, errHelp) {
		t.Fatalf("run --help = %v, want errHelp", err)
	}
	for _, f := range []string{"addr", "api-key", "insecure", "log-format", "buffer-size", "buffer-bytes", "max-body", "max-batch",
		"allow-private-targets", "retry-schedule", "delivery-timeout", "endpoint-concurrency", "max-retrying",
		"disable-after", "stream-queue", "stream-queue-bytes", "shutdown-timeout", "store", "debug-addr", "max-inflight", "max-streams", "max-webhooks", "ingest-rate", "read-header-timeout", "webhook-origin",
		"nats-url", "nats-embedded", "data-dir", "retention", "nats-replicas", "nats-creds", "nats-tls-ca", "encryption-key", "cors-origins"} {
		twin := "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
		if f == "api-key" {
			twin = "GATEWAY_API_KEYS"
		}
		if !strings.Contains(out.String(), "--"+f+" ") || !strings.Contains(out.String(), "["+twin+"]") {
			t.Errorf("--help lacks --%s or [%s]", f, twin)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// lines receives each complete line as it is written.
	lines chan string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		select {
		case b.lines <- sc.Text():
		default:
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRun runs the gateway on a free port and returns its base URL and a
// function that stops it (as SIGTERM does) and returns run's error.
func startRun(t *testing.T, args ...string) (string, *syncBuffer, func() error) {
	t.Helper()
	out := &syncBuffer{lines: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...), env(), out)
	}()
	var addr string
	deadline := time.After(10 * time.Second)
	for addr == "" {
		select {
		case line := <-out.lines:
			var rec struct{ Msg, Addr, Dashboard string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "eventgate listening" {
				if rec.Dashboard != "http://"+rec.Addr+"/" {
					t.Errorf("start line names dashboard %q for addr %q", rec.Dashboard, rec.Addr)
				}
				addr = rec.Addr
			}
		case err := <-done:
			cancel()
			t.Fatalf("run ended before listening: %v\n%s", err, out)
		case <-deadline:
			cancel()
			t.Fatalf("no start line in 10s:\n%s", out)
		}
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + addr, out, stop
}

func TestRunServesAndShutsDown(t *testing.T) {
	base, out, stop := startRun(t, "--buffer-size", "100")
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(`{"type":"order.created","data":{"n":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/", "/v1/events/1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run returned %v after shutdown, want nil", err)
	}
	log := out.String()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"ingest stopped","last_seq":1`, `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after run returned")
	}
}

func TestRunRequiresKeyWhenConfigured(t *testing.T) {
	base, _, _ := startRun(t, "--api-key", "s3cret")
	resp, err := http.Get(base + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with key: %d, want 200", resp.StatusCode)
	}
}

func TestRunRefusesBusyAddress(t *testing.T) {
	base, _, _ := startRun(t)
	addr := strings.TrimPrefix(base, "http://")
	err := run(context.Background(), []string{"--addr", addr}, env(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("second run on %s = %v, want a listen error", addr, err)
	}
}

func TestRunWiresIngestLimits(t *testing.T) {
	base, _, _ := startRun(t, "--ingest-rate", "1", "--max-batch", "1")
	codes := []int{}
	for range 2 {
		resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(`{"type":"a.b","data":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v, want [202 429] with --ingest-rate 1", codes)
	}
}

func TestRunEmbeddedNATSKeepsEventsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--store", "nats", "--nats-embedded", "--data-dir", dir}
	base, _, stop := startRun(t, args...)
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(`{"type":"order.created","id":"o-1","source":"/shop","data":{"n":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d with the embedded server up", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	base, _, _ = startRun(t, args...)
	resp, err = http.Get(base + "/v1/events/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Seq  uint64 `json:"seq"`
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Seq != 1 || e.ID != "o-1" || e.Type != "order.created" {
		t.Fatalf("after restart GET /v1/events/1 = %d %s", resp.StatusCode, body)
	}
}

// TestRunEmbeddedNATSKeepsWebhooksAndPendingDeliveries: a webhook and a
// delivery waiting for its retry survive stopping the gateway and its
// embedded server; the restarted gateway delivers it.
func TestRunEmbeddedNATSKeepsWebhooksAndPendingDeliveries(t *testing.T) {
	var ok atomic.Bool
	got := make(chan string, 100)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !ok.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got <- string(b)
	}))
	defer rc.Close()
	dir := t.TempDir()
	args := []string{"--store", "nats", "--nats-embedded", "--data-dir", dir, "--allow-private-targets",
		"--retry-schedule", "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s", "--delivery-timeout", "2s", "--shutdown-timeout", "3s"}
	base, _, stop := startRun(t, args...)
	post := func(base, path, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := post(base, "/v1/webhooks", `{"url":"`+rc.URL+`"}`)
	var hook struct{ ID string }
	if code != http.StatusCreated || json.Unmarshal(b, &hook) != nil {
		t.Fatalf("create webhook = %d %s", code, b)
	}
	if code, b := post(base, "/v1/events", `{"type":"order.created","data":{"n":1}}`); code != http.StatusAccepted {
		t.Fatalf("POST event = %d %s", code, b)
	}
	// Wait for the first failed attempt to be recorded as retrying.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/v1/webhooks/" + hook.ID + "/deliveries?status=retrying")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `"event_seq":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retrying delivery: %s", b)
		}
		time.Sleep(50 * time.Millisecond) // across the gateway's goroutines and NATS: poll
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ok.Store(true)
	base, _, _ = startRun(t, args...)
	resp, err := http.Get(base + "/v1/webhooks/" + hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart GET webhook = %d", resp.StatusCode)
	}
	select {
	case body := <-got:
		if !strings.Contains(body, `"seq":1,`) {
			t.Fatalf("delivered %s, want seq 1", body)
		}
	case <-time.After(30 * time.Second):
		resp, err := http.Get(base + "/v1/webhooks/" + hook.ID + "/deliveries")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("the pending delivery was not delivered after the restart; deliveries: %s", b)
	}
}

func TestRunServesPprofOnDebugAddr(t *testing.T) {
	_, out, stop := startRun(t, "--debug-addr", "127.0.0.1:0")
	var addr string
	for _, line := range strings.Split(out.String(), "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "pprof listening" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no pprof line in the log:\n%s", out)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof answered %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/debug/pprof/cmdline"); err == nil {
		t.Fatal("pprof still served after run returned")
	}
}

// TestRunEmbeddedNATSFirstLineSaysWhereAndWhichStore: on embedded NATS the
// server's banner stays at debug level; the first info line is the
// gateway's own, naming its address, its store and that store's limits.
func TestRunEmbeddedNATSFirstLineSaysWhereAndWhichStore(t *testing.T) {
	_, out, stop := startRun(t, "--store", "nats", "--nats-embedded", "--data-dir", t.TempDir(), "--buffer-size", "5000")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	var rec struct {
		Level, Msg, Addr, Store string
		Limits                  struct {
			Storage string `json:"storage"`
			MaxMsgs int64  `json:"max_msgs"`
		} `json:"store_limits"`
	}
	if err := json.Unmarshal([]byte(first), &rec); err != nil {
		t.Fatalf("first line %q: %v", first, err)
	}
	if rec.Msg != "eventgate listening" || rec.Addr == "" || rec.Store != "nats" || rec.Limits.Storage != "file" || rec.Limits.MaxMsgs != 5000 {
		t.Errorf("first line = %s", first)
	}
}

// TestRunEncryptionKeyWiring: with --encryption-key on embedded NATS a
// webhook survives a restart with the same key (its secret read back
// sealed and unsealed), and only a run without a key warns about secrets
// in clear.
func TestRunEncryptionKeyWiring(t *testing.T) {
	dir := t.TempDir()
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	args := []string{"--store", "nats", "--nats-embedded", "--data-dir", dir, "--allow-private-targets", "--encryption-key", key}
	base, out, stop := startRun(t, args...)
	resp, err := http.Post(base+"/v1/webhooks", "application/json", strings.NewReader(`{"url":"http://127.0.0.1:9/hook","headers":{"Authorization":"Bearer tok"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var hook struct{ ID, Secret string }
	_ = json.NewDecoder(resp.Body).Decode(&hook)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || hook.ID == "" {
		t.Fatalf("create = %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "stored in clear") {
		t.Errorf("a run with a key warned about clear text:\n%s", out)
	}

	base, _, stop = startRun(t, args...)
	resp, err = http.Get(base + "/v1/webhooks/" + hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after a restart with the key = %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	_, out, stop = startRun(t, "--store", "nats", "--nats-embedded", "--data-dir", t.TempDir())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stored in clear") {
		t.Errorf("a run without a key did not warn:\n%s", out)
	}
}
