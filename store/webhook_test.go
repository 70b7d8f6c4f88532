package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

func TestMemWebhooks(t *testing.T) {
	ctx := context.Background()
	var m store.MemWebhooks
	t0 := time.Unix(1700000000, 0)
	b := store.Webhook{ID: "wh_b", URL: "http://b", Types: []string{">"}, CreatedAt: t0}
	a := store.Webhook{ID: "wh_a", URL: "http://a", Types: []string{"x.*"}, CreatedAt: t0.Add(time.Second)}
	for _, w := range []store.Webhook{b, a} {
		if err := m.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Create(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	list, _ := m.List(ctx)
	if len(list) != 2 || list[0].ID != "wh_b" || list[1].ID != "wh_a" {
		t.Fatalf("List = %+v, want oldest first", list)
	}
	list[0].Types[0] = "mutated"
	if got, _ := m.Get(ctx, "wh_b"); got.Types[0] != ">" {
		t.Fatal("List shares its slices with the registry")
	}
	got, err := m.Update(ctx, "wh_a", func(w *store.Webhook) error { w.Enabled = true; w.ID = "evil"; return nil })
	if err != nil || !got.Enabled || got.ID != "wh_a" {
		t.Fatalf("Update = %+v, %v", got, err)
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
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after Delete: %v, want ErrNotFound", err)
		}
	}
}
