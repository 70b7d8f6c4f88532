package client_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/client"
	"github.com/eventgate/eventgate/gateway/signature"
)

// delivery is one request a test receiver got.
type delivery struct {
	msgID string
	err   error // signature verification
}

func TestWebhooks(t *testing.T) {
	g := startGateway(t, gwConfig{})
	c := newClient(t, g.URL)
	ctx := testCtx(t)

	got := make(chan delivery, 16)
	var secrets atomic.Pointer[[]signature.Secret] // what the receiver accepts
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := (&signature.Verifier{Secrets: *secrets.Load()}).VerifyRequest(r)
		got <- delivery{msgID: r.Header.Get("webhook-id"), err: err}
	}))
	defer recv.Close()

	wh, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: recv.URL + "/hooks", Types: []string{"order.>"}, Description: "orders",
		Headers: map[string]string{"Authorization": "Bearer r"}})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := signature.ParseSecret(wh.Secret)
	if err != nil || wh.Status != "active" || !wh.Enabled || wh.Headers["Authorization"] != "Bearer r" {
		t.Fatalf("created %+v (secret: %v)", wh, err)
	}
	secrets.Store(&[]signature.Secret{sec})

	if _, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: "ftp://x"}); apiError(t, err).Errors[0].Field != "/url" {
		t.Fatalf("bad URL: %v", err)
	}

	res, err := c.Publish(ctx, client.Event{Type: "order.created", Data: 1})
	if err != nil {
		t.Fatal(err)
	}
	first := <-got
	if first.err != nil || first.msgID == "" {
		t.Fatalf("delivery: %+v", first)
	}

	one, err := c.GetWebhook(ctx, wh.ID)
	if err != nil || one.ID != wh.ID || one.Secret != "" || one.Description != "orders" {
		t.Fatalf("GetWebhook = %+v, %v", one, err)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != wh.ID {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}

	// The gateway records the outcome after the receiver's answer: the
	// delivery log is the only way to see it, so poll it (bounded).
	var dl []client.Delivery
	for i := 0; i < 500 && (err == nil && (len(dl) == 0 || dl[0].Status != "succeeded")); i++ {
		if i > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		dl, err = c.Deliveries(ctx, wh.ID, client.DeliveryOptions{Limit: 10})
	}
	if err != nil || len(dl) != 1 || dl[0].Status != "succeeded" || dl[0].EventSeq != res.Seq || dl[0].EventID != res.ID {
		t.Fatalf("Deliveries = %+v, %v", dl, err)
	}
	d, err := c.RetryDelivery(ctx, wh.ID, dl[0].ID)
	if err != nil || d.ID != dl[0].ID {
		t.Fatalf("RetryDelivery = %+v, %v", d, err)
	}
	if again := <-got; again.msgID != first.msgID || again.err != nil {
		t.Fatalf("retried delivery %+v, want webhook-id %s", again, first.msgID)
	}

	// Rotation with a grace period: both secrets sign, so a receiver
	// that knows only the new one verifies too.
	rot, err := c.RotateSecret(ctx, wh.ID, time.Hour)
	if err != nil || rot.Secret == wh.Secret || time.Until(rot.PreviousSecretExpiresAt) < 50*time.Minute {
		t.Fatalf("RotateSecret = %+v, %v", rot, err)
	}
	newSec, err := signature.ParseSecret(rot.Secret)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Store(&[]signature.Secret{newSec})

	rep, err := c.ReplayWebhook(ctx, wh.ID, 0, 0)
	if err != nil || rep.Queued != 1 || rep.Gap != nil {
		t.Fatalf("ReplayWebhook = %+v, %v", rep, err)
	}
	if replayed := <-got; replayed.msgID != first.msgID || replayed.err != nil {
		t.Fatalf("replayed delivery %+v, want webhook-id %s, signed with the new secret", replayed, first.msgID)
	}

	up, err := c.UpdateWebhook(ctx, wh.ID, client.WebhookUpdate{Enabled: new(false), Headers: map[string]string{}})
	if err != nil || up.Enabled || up.Status != "disabled" || len(up.Headers) != 0 || up.Description != "orders" {
		t.Fatalf("disable: %+v, %v", up, err)
	}
	up, err = c.UpdateWebhook(ctx, wh.ID, client.WebhookUpdate{Enabled: new(true), Resume: "newest"})
	if err != nil || !up.Enabled || up.Resumed == nil || up.Resumed.From != "newest" {
		t.Fatalf("enable: %+v, %v", up, err)
	}

	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhook(ctx, wh.ID); apiError(t, err).StatusCode != http.StatusNotFound {
		t.Fatalf("after delete: %v", err)
	}
}
