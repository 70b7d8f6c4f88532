package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// publishSized appends, in one batch, n events whose data is a JSON
// string of size bytes.
func publishSized(t *testing.T, ring *store.Ring, n, size int) {
	t.Helper()
	data := json.RawMessage(`"` + strings.Repeat("x", size-2) + `"`)
	batch := make([]store.Event, n)
	for i := range batch {
		batch[i] = store.Event{ID: fmt.Sprint("x", published.Add(1)), Type: "a.b", Source: "/test", Data: data}
	}
	if _, err := ring.Append(t.Context(), batch, nil); err != nil {
		t.Fatal(err)
	}
}

// Live lag past the bytes bound cuts the client off, though it is far
// within the events bound, with the same reason as the events bound.
func TestHubCutsOffLiveLagInBytes(t *testing.T) {
	ring := store.NewRing(1000)
	var drops []gateway.Drop
	h := startHub(t, ring, gateway.HubConfig{Queue: 1000, QueueBytes: 20 << 10, MaxBatch: 1,
		OnDrop: func(d gateway.Drop) { drops = append(drops, d) }})
	sink := newFakeSink()
	sink.gate = make(chan struct{})
	done := serve(t, h, gateway.Subscription{Transport: "test"}, sink)
	sink.gate <- struct{}{} // hello
	<-sink.sent
	publishSized(t, ring, 2, 8<<10)
	sink.gate <- struct{}{} // 1: lag 1 event of 8 KiB is fine
	if got := <-sink.sent; len(got) != 1 || got[0] != 1 {
		t.Fatalf("sent %v, want 1", got)
	}
	sink.gate <- struct{}{} // 2
	if got := <-sink.sent; len(got) != 1 || got[0] != 2 {
		t.Fatalf("sent %v, want 2", got)
	}
	publishSized(t, ring, 5, 8<<10) // 3..7: the next message takes 3, leaving 4 events, 32 KiB > 20 KiB
	if err := <-done; !errors.Is(err, gateway.ErrSlowConsumer) {
		t.Fatalf("Serve = %v, want ErrSlowConsumer", err)
	}
	if c := <-sink.closed; c != "slow: slow consumer: last seq 2" {
		t.Fatalf("closed %q", c)
	}
	if len(drops) != 1 || drops[0].LastSeq != 2 || drops[0].Lag != 4 {
		t.Fatalf("drops %+v", drops)
	}
}
