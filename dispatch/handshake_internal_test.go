package dispatch

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// recordingSettler records how a queued delivery was settled.
type recordingSettler struct {
	mu   sync.Mutex
	naks []time.Duration
	acks int
}

func (r *recordingSettler) Ack() error { r.mu.Lock(); r.acks++; r.mu.Unlock(); return nil }
func (r *recordingSettler) Term() error {
	return nil
}

func (r *recordingSettler) InProgress() error { return nil }

func (r *recordingSettler) NakWithDelay(d time.Duration) error {
	r.mu.Lock()
	r.naks = append(r.naks, d)
	r.mu.Unlock()
	return nil
}

// TestAwaitingHandshakeHandsThePrefetchBack: a queue endpoint that comes
// to await a handshake (a new URL) attempts nothing until it is accepted,
// so the deliveries it prefetched go back to the queue at once, for
// another gateway or later, instead of waiting here with their AckWait
// running.
func TestAwaitingHandshakeHandsThePrefetchBack(t *testing.T) {
	ring := store.NewRing(16)
	defer func() { _ = ring.Close() }()
	d := New(gateway.NewPublisher(ring), Config{AllowPrivateTargets: true})
	e, err := d.newEndpoint(store.Webhook{ID: "wh_hs", URL: "http://127.0.0.1:9/hook", Enabled: true,
		Handshake: true, AwaitingHandshake: true, Secret: signature.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.cancel()
	e.hs.busy = true // a handshake request is in flight: step starts no other
	src := &queueSource{e: e}
	e.src = src
	settlers := []*recordingSettler{{}, {}}
	for i, s := range settlers {
		src.ready = append(src.ready, store.Queued{Record: store.Record{Seq: uint64(i + 1), Type: "a"}, Delivered: 1, Msg: s})
		src.readyAt = append(src.readyAt, time.Now())
	}

	var buf []store.Record
	e.step(&buf)

	if len(src.ready) != 0 {
		t.Fatalf("%d prefetched deliveries still held while awaiting the handshake", len(src.ready))
	}
	for i, s := range settlers {
		if !slices.Equal(s.naks, []time.Duration{time.Second}) || s.acks != 0 {
			t.Errorf("prefetched delivery %d settled with naks %v, acks %d; want one NakWithDelay(1s)", i+1, s.naks, s.acks)
		}
	}
	if e.inFlight != 0 {
		t.Errorf("%d attempts started while awaiting the handshake", e.inFlight)
	}
}
