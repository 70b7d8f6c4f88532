package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

// NewWebhooks opens an empty registry and registers its cleanup with tb.
type NewWebhooks func(tb testing.TB) store.Webhooks

// RunWebhooks runs the registry suite against registries made by open:
// the Webhooks contract, and Watch when the registry implements
// store.WebhookWatcher.
func RunWebhooks(t *testing.T, open NewWebhooks) {
	t.Run("Contract", func(t *testing.T) { testWebhooks(t, open(t)) })
	t.Run("Watch", func(t *testing.T) {
		r := open(t)
		if _, ok := r.(store.WebhookWatcher); !ok {
			t.Skip("not a WebhookWatcher")
		}
		testWatch(t, r)
	})
}

func testWebhooks(t *testing.T, m store.Webhooks) {
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	b := store.Webhook{ID: "wh_b", URL: "http://b", Types: []string{">"}, CreatedAt: t0,
		Headers: map[string]string{"X-A": "1"}, Secret: "whsec_x", Enabled: true}
	a := store.Webhook{ID: "wh_a", URL: "http://a", Types: []string{"x.*"}, CreatedAt: t0.Add(time.Second)}
	for _, w := range []store.Webhook{b, a} {
		if err := m.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Create(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	got, err := m.Get(ctx, "wh_b")
	if err != nil || got.URL != "http://b" || got.Headers["X-A"] != "1" || !got.CreatedAt.Equal(t0) || !got.Enabled || got.Secret != "whsec_x" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	list, _ := m.List(ctx)
	if len(list) != 2 || list[0].ID != "wh_b" || list[1].ID != "wh_a" {
		t.Fatalf("List = %+v, want oldest first", list)
	}
	list[0].Types[0] = "mutated"
	if got, _ := m.Get(ctx, "wh_b"); got.Types[0] != ">" {
		t.Fatal("List shares its slices with the registry")
	}
	before, _ := m.Get(ctx, "wh_a")
	got, err = m.Update(ctx, "wh_a", func(w *store.Webhook) error { w.Enabled = true; w.ID = "evil"; return nil })
	if err != nil || !got.Enabled || got.ID != "wh_a" {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	if got.Revision <= before.Revision {
		t.Fatalf("Update revision %d, want more than %d", got.Revision, before.Revision)
	}
	if again, _ := m.Get(ctx, "wh_a"); again.Revision != got.Revision || !again.Enabled {
		t.Fatalf("Get after Update = %+v, want revision %d", again, got.Revision)
	}
	boom := errors.New("boom")
	if _, err := m.Update(ctx, "wh_a", func(w *store.Webhook) error { w.URL = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed Update = %v", err)
	}
	if got, _ := m.Get(ctx, "wh_a"); got.URL != "http://a" {
		t.Fatal("a failed Update was stored")
	}
	if err := m.Delete(ctx, "wh_a"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		m.Delete(ctx, "wh_a"),
		func() error { _, err := m.Get(ctx, "wh_a"); return err }(),
		func() error { _, err := m.Update(ctx, "wh_a", func(*store.Webhook) error { return nil }); return err }(),
		func() error { _, err := m.Get(ctx, "no such id!"); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after Delete: %v, want ErrNotFound", err)
		}
	}
	if err := m.Create(ctx, a); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

// testWatch checks that Watch reports what is stored at its start, then
// creates, updates and deletes, each within a deadline.
func testWatch(t *testing.T, r store.Webhooks) {
	ctx := context.Background()
	if err := r.Create(ctx, store.Webhook{ID: "wh_old", URL: "http://o"}); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.(store.WebhookWatcher).Watch(wctx, func(id string) { ids <- id }) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	}()
	want := func(id string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case got := <-ids:
				if got == id {
					return
				}
			case <-deadline:
				t.Fatalf("Watch did not report %s", id)
			}
		}
	}
	want("wh_old")
	if err := r.Create(ctx, store.Webhook{ID: "wh_new", URL: "http://n"}); err != nil {
		t.Fatal(err)
	}
	want("wh_new")
	if _, err := r.Update(ctx, "wh_old", func(w *store.Webhook) error { w.URL = "http://o2"; return nil }); err != nil {
		t.Fatal(err)
	}
	want("wh_old")
	if err := r.Delete(ctx, "wh_new"); err != nil {
		t.Fatal(err)
	}
	want("wh_new")
	if _, err := r.Get(ctx, "wh_new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after a reported delete = %v", err)
	}
}
