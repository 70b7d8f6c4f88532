package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// received is one request a receiver got.
type received struct {
	N      int // 1-based, in arrival order
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a webhook endpoint on httptest that records every request
// and answers as its answer function says (200 when nil). Safe for
// concurrent use.
type receiver struct {
	URL     string
	got     chan received
	release chan struct{} // closed at cleanup: frees hanging handlers
	mu      sync.Mutex
	n       int
	answer  func(n int, w http.ResponseWriter, r *http.Request)
}

// newReceiver starts a receiver; answer may write any response or block on
// r.Context() / rc.release to hang. Its Close is registered with t.Cleanup.
func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 10000), release: make(chan struct{}), answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		select {
		case rc.got <- received{N: n, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()}:
		default:
			t.Errorf("receiver: more than %d requests", cap(rc.got))
		}
		if rc.answer != nil {
			rc.answer(n, w, r)
		}
	}))
	rc.URL = srv.URL + "/hook"
	t.Cleanup(func() {
		close(rc.release)
		srv.CloseClientConnections()
		srv.Close()
	})
	return rc
}

// next waits for the next request, failing the test after timeout.
func (rc *receiver) next(t testing.TB, timeout time.Duration) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(timeout):
		t.Fatalf("receiver: no request within %s", timeout)
		return received{}
	}
}

// count is how many requests arrived so far.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// status answers with a fixed code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// failFirst answers code to the first n requests and 204 afterwards.
func failFirst(n, code int) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		if i <= n {
			w.WriteHeader(code)
			fmt.Fprintf(w, "attempt %d refused", i)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
