package api_test

import (
	"testing"
	"time"
)

// TestWebhookTotalsSurviveRestartsAndAgree: on NATS a webhook's
// succeeded total comes from the store, so a gateway started after the
// one that delivered shows it, two gateways show the same, and it matches
// the delivery log.
func TestWebhookTotalsSurviveRestartsAndAgree(t *testing.T) {
	_, nc := connectNATS(t)
	on := func(t *testing.T) *testGateway {
		return startGateway(t, func(o *options) { o.NATS = &natsStore{Conn: nc, Stream: "TOTALS", Memory: true} })
	}
	rc := newReceiver(t, nil)
	var id string
	t.Run("deliver, then stop", func(t *testing.T) {
		g := on(t)
		id = g.createHook(t, map[string]any{"url": rc.URL}).ID
		for range 3 {
			g.waitDelivery(t, id, g.publish(t, "a.b"), "succeeded")
		}
	})
	a, b := on(t), on(t)
	for name, g := range map[string]*testGateway{"A": a, "B": b} {
		eventually(t, 5*time.Second, "gateway "+name+" to show 3 succeeded", func() bool {
			return g.getHook(t, id).Stats.Succeeded == 3
		})
		if n := len(g.deliveries(t, id, "?status=succeeded")); n != 3 {
			t.Errorf("gateway %s lists %d succeeded deliveries, want 3", name, n)
		}
	}
}
