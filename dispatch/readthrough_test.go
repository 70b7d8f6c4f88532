package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// laggingRegistry is a shared registry whose watch has not caught up yet:
// it never reports a change, as another gateway's watch would not in the
// instant after a create there answered.
type laggingRegistry struct{ store.MemWebhooks }

func (r *laggingRegistry) Watch(ctx context.Context, _ func(id string)) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestOperationsReadThroughToTheRegistry: a webhook another gateway
// created (stored in the shared registry, unknown here) can be updated,
// rotated, replayed, listed, retried and deleted here at once: a local
// miss reads through to the registry.
func TestOperationsReadThroughToTheRegistry(t *testing.T) {
	reg := &laggingRegistry{}
	ring := store.NewRing(100)
	d := dispatch.New(gateway.NewPublisher(ring), dispatch.Config{Webhooks: reg, AllowPrivateTargets: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done; _ = ring.Close() }()

	elsewhere := func(t *testing.T) string { // as the other gateway's Create stores it
		t.Helper()
		id := gateway.NewID("wh_", time.Now())
		w := store.Webhook{ID: id, URL: "http://127.0.0.1:9/hook", Types: []string{">"}, Enabled: true,
			Secret: signature.NewSecret(), CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := reg.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
		return id
	}
	desc := "changed here"
	ops := map[string]func(id string) error{
		"update": func(id string) error {
			_, _, err := d.Update(ctx, id, dispatch.WebhookUpdate{Description: &desc})
			return err
		},
		"rotate": func(id string) error { _, _, err := d.RotateSecret(ctx, id, time.Hour); return err },
		"replay": func(id string) error { _, err := d.Replay(ctx, id, 0, 0); return err },
		"deliveries": func(id string) error {
			_, err := d.Deliveries(id, "", 10, "")
			return err
		},
		"retry": func(id string) error { // the webhook is found: the delivery is not
			if _, err := d.Retry(ctx, id, "dlv_unknown"); !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if _, err := d.Deliveries(id, "", 1, ""); err != nil {
				return err
			}
			return nil
		},
		"tail": func(id string) error {
			tl, err := d.TailDeliveries(id)
			if err == nil {
				tl.Close()
			}
			return err
		},
		"delete": func(id string) error { return d.Delete(ctx, id) },
	}
	for name, op := range ops {
		if err := op(elsewhere(t)); err != nil {
			t.Errorf("%s of a webhook created elsewhere: %v", name, err)
		}
	}
	if _, _, err := d.Update(ctx, "wh_nowhere", dispatch.WebhookUpdate{Description: &desc}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of an unknown webhook: %v, want ErrNotFound", err)
	}
}
