package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/nats-io/nats.go"
)

// replicas is the stream's replica count.
func (n *natsStore) replicas() int { return max(n.Replicas, 1) }

// startNATS starts an embedded JetStream server (no port) storing under
// a temporary directory; it is shut down at cleanup.
func startNATS(t testing.TB) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// connectNATS starts an embedded JetStream server (startNATS) and returns
// it with a connection to it, closed at cleanup.
func connectNATS(t testing.TB) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	srv := startNATS(t)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, nc
}

// TestSuiteOnNATS runs the API suite's event and webhook tests again on
// the NATS store (embedded server, memory storage): one suite, two
// backends. Where the backends legitimately differ, the test itself
// branches on testGateway.NATS and says why.
func TestSuiteOnNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("NATS pass of the API suite")
	}
	_, nc := connectNATS(t)
	natsSuite = nc
	t.Cleanup(func() { natsSuite = nil })
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"RunsOnNATS", func(t *testing.T) {
			g := startGateway(t)
			if _, ok := g.Ring.(*natsjs.Log); !ok || !g.NATS {
				t.Fatalf("the NATS pass runs on %T", g.Ring)
			}
			rc := newReceiver(t, nil)
			h := g.createHook(t, map[string]any{"url": rc.URL})
			seq := g.publish(t, "a.b")
			rc.next(t, 10*time.Second)
			if d := g.waitDelivery(t, h.ID, seq, "succeeded"); !strings.HasPrefix(d.ID, "dlv_q") {
				t.Fatalf("delivery %+v did not come from the shared queue", d)
			}
		}},
		{"PostSingleEvent", TestPostSingleEvent},
		{"PostKeepsGivenFields", TestPostKeepsGivenFields},
		{"PostBatch", TestPostBatch},
		{"PostBatchAllOrNothing", TestPostBatchAllOrNothing},
		{"PostErrors", TestPostErrors},
		{"IdempotentRepeat", TestIdempotentRepeat},
		{"Replay", TestReplay},
		{"CloudEventsStructured", TestCloudEventsStructured},
		{"CloudEventsBatch", TestCloudEventsBatch},
		{"CloudEventsBinary", TestCloudEventsBinary},
		{"APIKeys", TestAPIKeys},
		{"Operations", TestOperations},
		{"WebhookDeliversExactBodySigned", TestWebhookDeliversExactBodySigned},
		{"WebhookSameIDForEveryEndpoint", TestWebhookSameIDForEveryEndpoint},
		{"WebhookPatternFiltering", TestWebhookPatternFiltering},
		{"WebhookSucceedsAfterFailures", TestWebhookSucceedsAfterFailures},
		{"WebhookRetryAfterAndFreshSignatures", TestWebhookRetryAfterAndFreshSignatures},
		{"WebhookGoneDisables", TestWebhookGoneDisables},
		{"WebhookRedirectIsFailureNotFollowed", TestWebhookRedirectIsFailureNotFollowed},
		{"WebhookFailedAfterMaxAttemptsThenManualRetry", TestWebhookFailedAfterMaxAttemptsThenManualRetry},
		{"WebhookPatchDisableHoldsAndReenableDelivers", TestWebhookPatchDisableHoldsAndReenableDelivers},
		{"WebhookDeleteStopsDeliveries", TestWebhookDeleteStopsDeliveries},
		{"WebhookValidation", TestWebhookValidation},
		{"WebhookIsolation", TestWebhookIsolation},
		{"WebhookMetricsAndStats", TestWebhookMetricsAndStats},
		{"WebhookReenableSaysWhere", TestWebhookReenableSaysWhere},
		{"WebhookCustomHeaders", TestWebhookCustomHeaders},
		{"WebhookReplayRange", TestWebhookReplayRange},
		{"DeliveryAttemptHistory", TestDeliveryAttemptHistory},
		{"DeliveryListPagesBack", TestDeliveryListPagesBack},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// TestIngestWhileTheStoreIsDown: a batch the store does not confirm (its
// NATS server is gone) is refused with 503 and Retry-After, which clients
// retry, not a 500.
func TestIngestWhileTheStoreIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("NATS")
	}
	srv, nc := connectNATS(t)
	g := startGateway(t, func(o *options) {
		o.NATS = &natsStore{Conn: nc, Stream: "DOWN", Memory: true, Timeout: 500 * time.Millisecond}
	})
	resp, body := g.postJSON(t, "/v1/events", `{"type":"a.b","data":1}`)
	wantStatus(t, resp, body, http.StatusAccepted)

	srv.Shutdown()
	resp, body = g.postJSON(t, "/v1/events", `{"type":"a.b","data":2}`)
	wantProblem(t, resp, body, http.StatusServiceUnavailable, "unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

// TestEventTooLargeForNATS: an event within --max-body but larger than the
// NATS server takes (max_payload) is a 413 naming the limit, not a 503 a
// client would retry forever; nothing of its batch is stored.
func TestEventTooLargeForNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("NATS")
	}
	_, nc := connectNATS(t)
	most := int(nc.MaxPayload())
	g := startGateway(t, func(o *options) {
		o.NATS = &natsStore{Conn: nc, Stream: "BIG", Memory: true}
		o.API.MaxBody = int64(2 * most)
	})
	big := `{"type":"a.b","data":"` + strings.Repeat("x", most-200) + `"}`
	resp, body := g.postJSON(t, "/v1/events", `[{"type":"a.b","data":1},`+big+`]`)
	wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "body-too-large")
	if n := g.Ring.Bounds().Newest; n != 0 {
		t.Fatalf("newest = %d after a refused batch, want 0", n)
	}
}
