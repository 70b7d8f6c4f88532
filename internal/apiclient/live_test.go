package apiclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/internal/apiclient"
	"github.com/eventgate/eventgate/internal/gatewaytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startGateway runs a real gateway on the ring store (gatewaytest.Ring),
// with webhooks allowed to reach 127.0.0.1.
func startGateway(t *testing.T) string {
	t.Helper()
	return gatewaytest.Ring(t, 1000)
}

// wire records the body of every request the generated client sends, so
// the test can look at the bytes it put on the wire.
type wire struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies map[string][][]byte // by "METHOD /path"
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		w.mu.Lock()
		key := req.Method + " " + req.URL.Path
		w.bodies[key] = append(w.bodies[key], b)
		w.mu.Unlock()
	}
	return w.next.RoundTrip(req)
}

func (w *wire) sent(key string) [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bodies[key]
}

// receiver is a webhook endpoint that records what it gets and answers
// 200 "ok".
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	seqs []uint64
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Seq uint64 }
		if b, err := io.ReadAll(r.Body); err == nil && json.Unmarshal(b, &ev) == nil {
			rc.mu.Lock()
			rc.seqs = append(rc.seqs, ev.Seq)
			rc.mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]uint64(nil), rc.seqs...)
}

func ptr[T any](v T) *T { return &v }

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestGeneratedClientAgainstGateway drives a real gateway with the
// generated client's typed calls only: publish one event (and repeat it),
// publish a batch and a structured CloudEvent, replay, register a webhook
// on a local receiver, and read its delivery log and one delivery.
func TestGeneratedClientAgainstGateway(t *testing.T) {
	base := startGateway(t)
	rc := newReceiver(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := &wire{next: tr, bodies: map[string][][]byte{}}
	c, err := apiclient.NewClientWithResponses(base, apiclient.WithHTTPClient(&http.Client{Transport: w, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A webhook on the receiver; it takes events stored from now on.
	created, err := c.CreateWebhookWithResponse(ctx, apiclient.WebhookCreate{
		Url: rc.URL, Types: &apiclient.WebhookTypes{"order.>"}, Description: ptr("generated client"),
	})
	if err != nil {
		t.Fatal(err)
	}
	hook := created.JSON201
	if hook == nil {
		t.Fatalf("create webhook = %d %s", created.StatusCode(), created.Body)
	}
	if hook.Status != apiclient.WebhookStatusActive || !hook.Enabled || hook.Url != rc.URL ||
		!reflect.DeepEqual(hook.Types, apiclient.WebhookTypes{"order.>"}) || hook.Description != "generated client" ||
		!strings.HasPrefix(hook.Secret, "whsec_") || !strings.HasPrefix(hook.Id, "wh_") {
		t.Fatalf("created webhook = %+v", hook)
	}
	attempts := openTail(ctx, t, c, hook.Id)

	// One event: the union holds an EventInput, and the wire an object.
	single := apiclient.EventInput{
		Type: "order.created", Source: ptr("/shop"), Id: ptr("order-981-created"),
		Data: map[string]any{"order_id": 981},
	}
	var body apiclient.PublishRequest
	if err := body.FromEventInput(single); err != nil {
		t.Fatal(err)
	}
	pub, err := c.PublishEventsWithResponse(ctx, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if pub.JSON202 == nil {
		t.Fatalf("publish = %d %s", pub.StatusCode(), pub.Body)
	}
	first, err := pub.JSON202.AsPublishResult()
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.Id != "order-981-created" || first.Duplicate != nil {
		t.Fatalf("publish result = %+v (%s)", first, pub.Body)
	}

	// The same source+id again: 200, a duplicate of seq 1.
	again, err := c.PublishEventsWithResponse(ctx, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if again.JSON200 == nil || again.JSON200.Seq != 1 || again.JSON200.Duplicate == nil || !bool(*again.JSON200.Duplicate) {
		t.Fatalf("repeat = %d %s", again.StatusCode(), again.Body)
	}

	// A batch: the union holds an EventInputBatch, and the wire an array.
	batch := apiclient.EventInputBatch{
		{Type: "order.item.added", Subject: ptr("order/981"), Data: map[string]any{"sku": "A-100", "qty": 2}},
		{Type: "order.paid", Data: nil}, // data is required; null is a value
	}
	if err := body.FromEventInputBatch(batch); err != nil {
		t.Fatal(err)
	}
	pub, err = c.PublishEventsWithResponse(ctx, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if pub.JSON202 == nil {
		t.Fatalf("publish batch = %d %s", pub.StatusCode(), pub.Body)
	}
	res, err := pub.JSON202.AsPublishBatchResult()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 2 || res.Events[0].Seq != 2 || res.Events[1].Seq != 3 ||
		!strings.HasPrefix(res.Events[0].Id, "evt_") || res.Events[0].Id == res.Events[1].Id {
		t.Fatalf("batch result = %s", pub.Body)
	}

	// What went on the wire: the union's JSON, never "{}".
	sent := w.sent("POST /v1/events")
	want := []string{
		`{"type":"order.created","source":"/shop","id":"order-981-created","data":{"order_id":981}}`,
		`{"type":"order.created","source":"/shop","id":"order-981-created","data":{"order_id":981}}`,
		`[{"type":"order.item.added","subject":"order/981","data":{"sku":"A-100","qty":2}},{"type":"order.paid","data":null}]`,
	}
	if len(sent) != len(want) {
		t.Fatalf("sent %d publish bodies, want %d", len(sent), len(want))
	}
	for i := range want {
		if !jsonEqual(t, sent[i], []byte(want[i])) {
			t.Errorf("publish body %d on the wire = %s, want %s", i, sent[i], want[i])
		}
	}

	// Replay with a type filter: the three order events, in seq order.
	page, err := c.ListEventsWithResponse(ctx, &apiclient.ListEventsParams{Type: &[]apiclient.TypePattern{"order.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if page.JSON200 == nil || len(page.JSON200.Events) != 3 || page.JSON200.Next != 3 || page.JSON200.Newest != 3 {
		t.Fatalf("replay = %d %s", page.StatusCode(), page.Body)
	}
	for i, typ := range []string{"order.created", "order.item.added", "order.paid"} {
		if e := page.JSON200.Events[i]; e.Seq != uint64(i+1) || e.Type != typ {
			t.Errorf("replayed event %d = seq %d type %s, want %d %s", i, e.Seq, e.Type, i+1, typ)
		}
	}

	// Wait for the three deliveries to succeed, as the tail reports them.
	done := map[uint64]string{}
	for len(done) < 3 {
		select {
		case a, ok := <-attempts:
			if !ok {
				t.Fatalf("the delivery tail ended; succeeded so far: %v", done)
			}
			if a.Status == apiclient.DeliveryStatusSucceeded {
				done[a.EventSeq] = a.DeliveryId
			}
		case <-ctx.Done():
			t.Fatalf("deliveries did not all succeed: %v", done)
		}
	}

	// The delivery log, newest first.
	list, err := c.ListDeliveriesWithResponse(ctx, hook.Id, &apiclient.ListDeliveriesParams{Limit: ptr(10)})
	if err != nil {
		t.Fatal(err)
	}
	if list.JSON200 == nil || len(list.JSON200.Deliveries) != 3 {
		t.Fatalf("deliveries = %d %s", list.StatusCode(), list.Body)
	}
	eventIDs := map[uint64]string{1: "order-981-created", 2: res.Events[0].Id, 3: res.Events[1].Id}
	for i, d := range list.JSON200.Deliveries {
		seq := uint64(3 - i)
		if d.EventSeq != seq || d.Id != done[seq] || d.Status != apiclient.DeliveryStatusSucceeded || d.Attempts != 1 ||
			d.EventId == nil || *d.EventId != eventIDs[seq] || d.LastStatusCode == nil || *d.LastStatusCode != 200 ||
			d.LastError != nil || d.LastAttemptAt == nil || d.NextAttemptAt != nil || d.DurationMs == nil {
			t.Errorf("delivery %d = %+v", i, d)
		}
	}

	// One delivery in detail: its attempt and the event it carried.
	detail, err := c.GetDeliveryWithResponse(ctx, hook.Id, done[1])
	if err != nil {
		t.Fatal(err)
	}
	d := detail.JSON200
	if d == nil {
		t.Fatalf("delivery detail = %d %s", detail.StatusCode(), detail.Body)
	}
	if d.Id != done[1] || d.EventSeq != 1 || d.Status != apiclient.DeliveryStatusSucceeded ||
		d.Origin != apiclient.DeliveryOriginLive || d.AttemptCount != 1 || len(d.Attempts) != 1 {
		t.Fatalf("delivery detail = %s", detail.Body)
	}
	at := d.Attempts[0]
	if at.StatusCode == nil || *at.StatusCode != 200 || at.Error != nil || at.Trigger != apiclient.AttemptRecordTriggerScheduled ||
		at.ResponseBody == nil || *at.ResponseBody != "ok" || at.ResponseContentType == nil || *at.ResponseContentType != "text/plain" {
		t.Errorf("attempt = %+v", at)
	}
	if e := d.Event; e == nil || e.Seq != 1 || e.Id != "order-981-created" || e.Type != "order.created" || e.Source != "/shop" ||
		!reflect.DeepEqual(e.Data, map[string]any{"order_id": float64(981)}) {
		t.Errorf("delivered event = %+v", d.Event)
	}
	if got := rc.got(); len(got) != 3 {
		t.Errorf("the receiver got seqs %v, want 1, 2 and 3 once each", got)
	}
}

// openTail opens the webhook's delivery tail with the generated call and
// returns its attempts; it returns once the tail's opening comment came,
// so no attempt after that is missed. The reader ends with ctx.
func openTail(ctx context.Context, t *testing.T, c *apiclient.ClientWithResponses, id string) <-chan apiclient.DeliveryAttempt {
	t.Helper()
	resp, err := c.StreamDeliveries(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("delivery tail = %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
		resp.Body.Close()
		t.Fatalf("the delivery tail did not open with a comment: %q %v", sc.Text(), sc.Err())
	}
	out := make(chan apiclient.DeliveryAttempt, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var a apiclient.DeliveryAttempt
			if err := json.Unmarshal([]byte(data), &a); err != nil {
				t.Errorf("tail message %s: %v", data, err)
				return
			}
			select {
			case out <- a:
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() {
		resp.Body.Close()
		wg.Wait()
	})
	return out
}

// TestGeneratedClientExtensionTypes publishes CloudEvents with extension
// attributes through the generated calls and reads them back: structured
// mode keeps each value's JSON type, binary mode (ce-* headers) gives
// strings, as openapi.yaml says.
func TestGeneratedClientExtensionTypes(t *testing.T) {
	base := startGateway(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := apiclient.NewClientWithResponses(base, apiclient.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ext := func(set func(*apiclient.ExtensionValue) error) apiclient.ExtensionValue {
		var v apiclient.ExtensionValue
		if err := set(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	ce := apiclient.CloudEvent{
		Specversion: apiclient.CloudEventSpecversionN10, Id: "ce-1", Source: "/sensors/7", Type: "sensor.reading",
		Data: map[string]any{"celsius": 21.5},
		AdditionalProperties: map[string]apiclient.ExtensionValue{
			"priority": ext(func(v *apiclient.ExtensionValue) error { return v.FromExtensionNumber(5) }),
			"sampled":  ext(func(v *apiclient.ExtensionValue) error { return v.FromExtensionBoolean(true) }),
			"region":   ext(func(v *apiclient.ExtensionValue) error { return v.FromExtensionString("eu") }),
		},
	}
	structured, err := c.PublishEventsWithApplicationCloudeventsPlusJSONBodyWithResponse(ctx, nil, ce)
	if err != nil {
		t.Fatal(err)
	}
	if structured.JSON202 == nil {
		t.Fatalf("structured = %d %s", structured.StatusCode(), structured.Body)
	}

	// Binary mode: the attributes are headers; the extension is a ce-*
	// header that no spec parameter can name, so a request editor adds it.
	binary, err := c.PublishEventsWithBodyWithResponse(ctx, &apiclient.PublishEventsParams{
		CeSpecversion: ptr(apiclient.PublishEventsParamsCeSpecversionN10), CeId: ptr("ce-2"),
		CeSource: ptr("/sensors/7"), CeType: ptr("sensor.reading"),
	}, "application/json", strings.NewReader(`{"celsius":22}`), func(_ context.Context, req *http.Request) error {
		req.Header.Set("ce-priority", "5")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if binary.JSON202 == nil {
		t.Fatalf("binary = %d %s", binary.StatusCode(), binary.Body)
	}

	one, err := c.GetEventWithResponse(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if one.JSON200 == nil || one.JSON200.Extensions == nil {
		t.Fatalf("event 1 = %d %s", one.StatusCode(), one.Body)
	}
	exts := *one.JSON200.Extensions
	if n, err := exts["priority"].AsExtensionNumber(); err != nil || n != 5 {
		t.Errorf("structured priority = %v, %v; want the number 5 (%s)", n, err, one.Body)
	}
	if b, err := exts["sampled"].AsExtensionBoolean(); err != nil || !b {
		t.Errorf("structured sampled = %v, %v; want true (%s)", b, err, one.Body)
	}
	if s, err := exts["region"].AsExtensionString(); err != nil || s != "eu" {
		t.Errorf("structured region = %q, %v; want eu (%s)", s, err, one.Body)
	}
	if _, err := exts["priority"].AsExtensionString(); err == nil {
		t.Errorf("structured priority reads as a string: %s", one.Body)
	}

	two, err := c.GetEventWithResponse(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if two.JSON200 == nil || two.JSON200.Extensions == nil {
		t.Fatalf("event 2 = %d %s", two.StatusCode(), two.Body)
	}
	if s, err := (*two.JSON200.Extensions)["priority"].AsExtensionString(); err != nil || s != "5" {
		t.Errorf("binary priority = %q, %v; want the string \"5\" (%s)", s, err, two.Body)
	}
	if d := two.JSON200.Data; !reflect.DeepEqual(d, map[string]any{"celsius": float64(22)}) {
		t.Errorf("binary data = %v", d)
	}

	// The SSE stream through the plain Client (the README's advice): a
	// hello, then both events replayed after seq 0, as StreamLines.
	resp, err := c.OpenStream(ctx, &apiclient.OpenStreamParams{After: ptr(apiclient.Cursor(0))},
		func(_ context.Context, req *http.Request) error {
			req.Header.Set("Accept", "text/event-stream")
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream = %d", resp.StatusCode)
	}
	var hello bool
	var seqs []uint64
	for sc := bufio.NewScanner(resp.Body); len(seqs) < 2 && sc.Scan(); {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var line apiclient.StreamLine
		if err := json.Unmarshal([]byte(data), &line); err != nil {
			t.Fatalf("stream line %s: %v", data, err)
		}
		if h, err := line.AsStreamHello(); err == nil && h.Hello.Epoch != "" {
			hello = len(seqs) == 0
			continue
		}
		e, err := line.AsEvent()
		if err != nil {
			t.Fatalf("stream line %s: %v", data, err)
		}
		seqs = append(seqs, e.Seq)
	}
	if !hello || !reflect.DeepEqual(seqs, []uint64{1, 2}) {
		t.Errorf("stream: hello first %v, events %v; want a hello, then seqs 1 and 2", hello, seqs)
	}
}
