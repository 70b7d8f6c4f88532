package natsjs

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

// TestCompactStateRoundTrip: every field of a delivery's state comes back
// from the compact form, also where the state's last-attempt figures
// differ from its newest attempt (a disable's note on the error, no
// history at all), and the form is well under the first one's size.
func TestCompactStateRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 22, 44, 6, 371706350, time.UTC)
	attempt := store.AttemptRecord{Start: t0, Duration: 312 * time.Microsecond, StatusCode: 204, Trigger: store.TriggerScheduled}
	cases := map[string]store.Delivery{
		"succeeded": {ID: "dlv_q123456", WebhookID: "wh_a", EventSeq: 123456, EventID: "evt_1", Status: store.DeliverySucceeded,
			Attempts: 1, LastStatusCode: 204, LastAttemptAt: t0, Duration: 312 * time.Microsecond, CreatedAt: t0,
			History: []store.AttemptRecord{attempt}},
		"gone, disabled": {ID: "dlv_q7", WebhookID: "wh_a", EventSeq: 7, EventID: "evt_7", Status: store.DeliveryFailed,
			Attempts: 2, LastStatusCode: 410, LastError: "HTTP 410; the webhook was disabled", LastAttemptAt: t0.Add(time.Second),
			Duration: time.Millisecond, CreatedAt: t0, Origin: store.OriginReplay,
			History: []store.AttemptRecord{attempt, {Start: t0.Add(time.Second), Duration: time.Millisecond, StatusCode: 410,
				Error: "HTTP 410", Trigger: store.TriggerRetry, Response: "gone", ContentType: "text/plain"}}},
		"retrying, no answer": {ID: "dlv_x", WebhookID: "wh_a", EventSeq: 9, EventID: "evt_9", Status: store.DeliveryRetrying,
			Attempts: 1, LastError: "connection refused", LastAttemptAt: t0, NextAttemptAt: t0.Add(time.Minute), CreatedAt: t0,
			History: []store.AttemptRecord{{Start: t0, Error: "connection refused", Trigger: store.TriggerScheduled}}},
		"overwritten, no history": {ID: "dlv_gap", WebhookID: "wh_a", EventSeq: 3, Status: store.DeliveryFailed,
			LastError: "events 3-5 were overwritten", LastAttemptAt: t0, CreatedAt: t0},
		"pending": {ID: "dlv_q1", WebhookID: "wh_a", EventSeq: 1, EventID: "evt_1", Status: store.DeliveryPending, CreatedAt: t0},
	}
	for name, d := range cases {
		c := compactOf(&d)
		b, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeStates(append(append(append([]byte(nil), compactMark...), '['), append(b, ']')...), "wh_a")
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: decoded %v, %v", name, got, err)
		}
		if !reflect.DeepEqual(got[0], d) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got[0], d)
		}
		first, _ := json.Marshal(d)
		if name == "succeeded" && 2*len(b) > len(first) {
			t.Errorf("%s: compact %d bytes, the first form %d: want under half", name, len(b), len(first))
		}
	}
}

// TestCompactMessagesSkippedByOlderReaders: a compact message is not
// JSON, so a gateway that reads only the first form (json.Unmarshal into
// a store.Delivery or a slice of them) skips it rather than list empty
// states; both forms decode here.
func TestCompactMessagesSkippedByOlderReaders(t *testing.T) {
	d := store.Delivery{ID: "dlv_q1", EventSeq: 1, Status: store.DeliveryPending, CreatedAt: time.Unix(1, 0).UTC()}
	c := compactOf(&d)
	b, _ := json.Marshal(&c)
	msg := append(append(append([]byte(nil), compactMark...), '['), append(b, ']')...)
	var one store.Delivery
	var many []store.Delivery
	if json.Unmarshal(msg, &one) == nil || json.Unmarshal(msg, &many) == nil {
		t.Fatalf("an older reader decodes %q", msg)
	}
	first, _ := json.Marshal([]store.Delivery{d})
	for _, m := range [][]byte{msg, first, first[1 : len(first)-1]} {
		got, err := decodeStates(m, "")
		if err != nil || len(got) != 1 || got[0].ID != "dlv_q1" {
			t.Fatalf("decodeStates(%s) = %+v, %v", strings.TrimSpace(string(m)), got, err)
		}
	}
}
