package api_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

// appendHook is a log whose Append goes through a hook.
type appendHook struct {
	store.Log
	append func(ctx context.Context, batch []store.Event, out []store.Appended) ([]store.Appended, error)
}

func (a *appendHook) Append(ctx context.Context, batch []store.Event, out []store.Appended) ([]store.Appended, error) {
	return a.append(ctx, batch, out)
}

// TestStoreFailureIs500: an append that fails for no known reason is a 500
// problem that shows nothing of the error.
func TestStoreFailureIs500(t *testing.T) {
	g := startGateway(t, func(o *options) {
		o.WrapLog = func(l store.Log) store.Log {
			return &appendHook{Log: l, append: func(context.Context, []store.Event, []store.Appended) ([]store.Appended, error) {
				return nil, errors.New("disk on fire: internal detail")
			}}
		}
	})
	resp, body := g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	wantProblem(t, resp, body, http.StatusInternalServerError, "internal")
	if bytes.Contains(body, []byte("internal detail")) {
		t.Fatalf("the store's error reached the client: %s", body)
	}
}

// TestClientGoneAfterTheStoreTookTheEvents: a client that leaves while its
// events are being stored does not undo them: they are stored and counted
// as accepted, not answered as a failure.
func TestClientGoneAfterTheStoreTookTheEvents(t *testing.T) {
	stored := make(chan struct{})
	g := startGateway(t, func(o *options) {
		o.WrapLog = func(l store.Log) store.Log {
			return &appendHook{Log: l, append: func(ctx context.Context, b []store.Event, out []store.Appended) ([]store.Appended, error) {
				out, err := l.Append(ctx, b, out)
				close(stored)
				select { // until the request ends: the client went away
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
				return out, err
			}}
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/events", strings.NewReader(`{"type":"a.b","data":1}`))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if resp, err := new(http.Client).Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-stored
	cancel()
	<-sent
	eventually(t, 10*time.Second, "the stored event to count as accepted", func() bool {
		_, body := g.do(t, http.MethodGet, "/metrics", "", nil)
		return bytes.Contains(body, []byte(`eventgate_events_ingested_total{result="accepted"} 1`))
	})
	if n := g.Ring.Bounds().Newest; n != 1 {
		t.Fatalf("newest = %d, want the one stored event", n)
	}
}
