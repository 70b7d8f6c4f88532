package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/eventgate/eventgate/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080", client.WithAPIKey("my-key"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Publish(ctx, client.Event{Type: "order.created", Source: "/shop", Data: map[string]any{"order": 981}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored as seq", res.Seq)
}

func ExampleClient_Publish() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:8080")
	// With an ID of your own, a retry of the whole call (say, after a
	// crash) is recognised too: Duplicate reports a repeat.
	res, err := c.Publish(ctx, client.Event{ID: "order-981-created", Source: "/shop", Type: "order.created", Data: map[string]any{"order": 981}})
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnprocessableEntity:
		for _, f := range apiErr.Errors {
			log.Printf("invalid %s: %s", f.Field, f.Message)
		}
	case err != nil:
		log.Fatal(err)
	case res.Duplicate:
		fmt.Println("already stored as seq", res.Seq)
	default:
		fmt.Println("stored as seq", res.Seq)
	}
}

func ExampleClient_PublishBatch() {
	c, _ := client.New("http://127.0.0.1:8080")
	res, err := c.PublishBatch(context.Background(), []client.Event{
		{Type: "order.paid", Data: map[string]any{"order": 981}},
		{Type: "user.created", Data: map[string]any{"user": "u1"}},
	})
	if err != nil {
		log.Fatal(err) // nothing was stored
	}
	fmt.Println("seqs", res[0].Seq, res[1].Seq)
}

func ExampleClient_Replay() {
	c, _ := client.New("http://127.0.0.1:8080")
	for ev, err := range c.Replay(context.Background(), client.ReplayOptions{After: 0, Types: []string{"order.*"}}) {
		var gap *client.GapError
		if errors.As(err, &gap) {
			log.Printf("events %d..%d were overwritten before we read them", gap.From, gap.To)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		var order struct{ Order int }
		if err := ev.UnmarshalData(&order); err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Seq, ev.Type, order.Order)
	}
}

func ExampleClient_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	c, _ := client.New("http://127.0.0.1:8080")
	var saved *client.Cursor // load from storage to resume where a previous run stopped
	for sev, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{"order.>"}, From: saved}) {
		if err != nil {
			log.Println("subscription ended:", err)
			return
		}
		switch sev.Kind {
		case client.KindEvent:
			fmt.Println(sev.Event.Seq, sev.Event.Type)
		case client.KindGap:
			log.Printf("lost events %d..%d (overwritten before we got them)", sev.Gap.From, sev.Gap.To)
		case client.KindReset:
			log.Printf("the gateway's log is new (epoch %s): seqs start again", sev.Reset.Epoch)
		case client.KindSlowConsumer, client.KindDisconnected:
			log.Printf("%s: %v (resuming)", sev.Kind, sev.Err)
		}
		saveCursor(sev.Cursor) // where to resume next time
	}
}

// saveCursor stands for storing the cursor where the next run loads it.
func saveCursor(client.Cursor) {}

func ExampleClient_CreateWebhook() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:8080")
	wh, err := c.CreateWebhook(ctx, client.WebhookCreate{
		URL:   "https://receiver.example.com/hooks/eventgate",
		Types: []string{"order.>"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("give the receiver this secret:", wh.Secret) // shown only now

	// Later: pause it, look at failures, resume without the backlog.
	_, _ = c.UpdateWebhook(ctx, wh.ID, client.WebhookUpdate{Enabled: new(false)})
	failed, _ := c.Deliveries(ctx, wh.ID, client.DeliveryOptions{Status: "failed"})
	for _, d := range failed {
		fmt.Println(d.EventSeq, d.LastStatusCode, d.LastError)
	}
	_, _ = c.UpdateWebhook(ctx, wh.ID, client.WebhookUpdate{Enabled: new(true), Resume: "newest"})
}

// The gateway's problem details come back as a *client.Error.
func ExampleError() {
	// A stand-in for a gateway that refuses an event.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"type":"https://eventgate.dev/problems/validation-error","title":"Validation failed",`+
			`"status":422,"detail":"1 field is invalid","errors":[{"field":"/type","message":"must be dot-separated segments"}]}`)
	}))
	defer srv.Close()

	c, _ := client.New(srv.URL)
	_, err := c.Publish(context.Background(), client.Event{Type: "bad type", Data: nil})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Title)
		for _, f := range apiErr.Errors {
			fmt.Println(f.Field, f.Message)
		}
	}
	// Output:
	// 422 Validation failed
	// /type must be dot-separated segments
}
