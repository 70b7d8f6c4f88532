package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// logLines is a log destination a test can wait on: each Write is one
// record of slog's handlers.
type logLines struct {
	mu    sync.Mutex
	lines []string
	wrote chan struct{} // gets a token after each Write
}

func newLogLines() *logLines { return &logLines{wrote: make(chan struct{}, 1)} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitFor returns the first line containing s, failing after 5 s.
func (l *logLines) waitFor(t testing.TB, s string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		all := strings.Join(l.lines, "")
		l.mu.Unlock()
		select {
		case <-l.wrote:
		case <-deadline:
			t.Fatalf("no log line with %q in 5s:\n%s", s, all)
		}
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// A webhook URL's password never reaches the log.
func TestWebhookURLPasswordIsNotLogged(t *testing.T) {
	logs := newLogLines()
	g := startGateway(t, func(o *options) {
		o.Disp.Origin = "gw.test"
		o.Disp.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("WebHook-Allowed-Origin", r.Header.Get("WebHook-Request-Origin"))
		}
	})
	url := "http://alice:hunter2-secret@" + strings.TrimPrefix(rc.URL, "http://")
	g.createHook(t, map[string]any{"url": url, "handshake": true})
	line := logs.waitFor(t, "webhook handshake accepted")
	if !strings.Contains(line, "alice:xxxxx@") {
		t.Errorf("the handshake line does not name the URL, redacted: %s", line)
	}
	seq := g.publish(t, "order.created")
	_ = rc.next(t, 5*time.Second) // the handshake
	if got := rc.next(t, 5*time.Second); !strings.Contains(string(got.Body), `"seq":`) || seq == 0 {
		t.Fatalf("delivery %s", got.Body)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("the log holds the URL's password:\n%s", logs)
	}
}
