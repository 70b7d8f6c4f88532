package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestManualRetryOnNATSSettlesTheQueuedRetry: on NATS a failed delivery's
// retry waits in the webhook's shared queue. A manual retry that
// succeeds, here on another gateway than the one that attempted it,
// settles that queued retry (no gateway sends the event again when it
// falls due) and counts the success once, on every gateway. The same holds
// on the gateway that made the failed attempt.
func TestManualRetryOnNATSSettlesTheQueuedRetry(t *testing.T) {
	_, nc := connectNATS(t)
	for _, where := range []string{"another gateway", "the same gateway"} {
		t.Run(where, func(t *testing.T) {
			stream := "MANUAL_" + strings.ReplaceAll(strings.ToUpper(where), " ", "_")
			on := func(t *testing.T) *testGateway {
				return startGateway(t, func(o *options) {
					o.NATS = &natsStore{Conn: nc, Stream: stream, Memory: true}
					o.Disp.Schedule = []time.Duration{time.Hour} // the queued retry stays queued
				})
			}
			a, b := on(t), on(t)
			if where == "the same gateway" {
				b = a
			}
			manualRetrySettles(t, nc, stream, a, b)
		})
	}
}

// manualRetrySettles: a delivery fails on a, is retried by hand on b.
func manualRetrySettles(t *testing.T, nc *nats.Conn, stream string, a, b *testGateway) {
	rc := newReceiver(t, failFirst(1, http.StatusInternalServerError))
	h := a.createHook(t, map[string]any{"url": rc.URL})
	seq := a.publish(t, "order.created")
	d := a.waitDelivery(t, h.ID, seq, "retrying")

	resp, body := b.do(t, http.MethodPost, "/v1/webhooks/"+h.ID+"/deliveries/"+d.ID+"/retry", "", nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	b.waitDelivery(t, h.ID, seq, "succeeded")

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, stream, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the queued retry to be settled", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	for name, g := range map[string]*testGateway{"A": a, "B": b} {
		eventually(t, 5*time.Second, "gateway "+name+" to count the success once", func() bool {
			st := g.getHook(t, h.ID).Stats
			return st.Succeeded == 1 && st.Failed == 0
		})
	}
	if n := rc.count(); n != 2 {
		t.Errorf("the receiver got %d requests, want 2 (the failed attempt and the manual one)", n)
	}
}
