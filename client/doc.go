// Package client is a Go client for eventgate, an event gateway: publish
// events, replay the buffered log, follow it live, and administer
// webhooks. It depends on the standard library and
// github.com/coder/websocket only.
//
// # A short tour
//
// Create a client for a gateway (add WithAPIKey when the gateway has keys):
//
//	c, err := client.New("http://127.0.0.1:8080")
//
// Publish an event. It gets an id before it is sent, so the retries the
// client makes on 429, 503 and network failures can never store it twice:
//
//	res, err := c.Publish(ctx, client.Event{Type: "order.created", Source: "/shop", Data: order})
//	// res.Seq is its place in the log; res.Duplicate says it was a repeat
//
// Read what is buffered, page by page, as an iterator:
//
//	for ev, err := range c.Replay(ctx, client.ReplayOptions{Types: []string{"order.*"}}) {
//		var gap *client.GapError
//		if errors.As(err, &gap) {
//			log.Printf("lost %d..%d", gap.From, gap.To) // and go on
//			continue
//		}
//		if err != nil {
//			return err
//		}
//		handle(ev)
//	}
//
// Follow the log live. The subscription resumes by itself after
// disconnects, slow-consumer cut-offs and gateway restarts, with no gap
// and no duplicate; what it cannot hide comes as a StreamEvent of its
// own kind:
//
//	for sev, err := range c.Subscribe(ctx, client.SubscribeOptions{Types: []string{"order.>"}}) {
//		if err != nil {
//			return err // ctx ended, or the gateway refused the subscription
//		}
//		switch sev.Kind {
//		case client.KindEvent:
//			handle(sev.Event)
//		case client.KindGap, client.KindReset:
//			log.Printf("%s: %+v %+v", sev.Kind, sev.Gap, sev.Reset)
//		}
//		save(sev.Cursor) // pass as SubscribeOptions.From to resume later
//	}
//
// Register a webhook, and keep its secret for the receiver
// (github.com/eventgate/eventgate/gateway/signature verifies deliveries in
// Go; see the examples directory of the repository):
//
//	wh, err := c.CreateWebhook(ctx, client.WebhookCreate{URL: "https://example.com/hooks", Types: []string{"order.>"}})
//
// # Errors
//
// Every answer other than 2xx is an *Error holding the gateway's RFC 9457
// problem (type, title, detail, field errors) and status; use errors.As.
// Replay yields *GapError and *EpochError. Every call takes a context and
// returns when it ends.
//
// # Concurrency
//
// A Client is safe for concurrent use and starts no goroutines. Replay and
// Subscribe run in the goroutine of the loop over them; breaking out of
// the loop, or ending ctx, ends them and closes what they opened.
package client
