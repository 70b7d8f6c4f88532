//go:build !race

// The race detector changes frame sizes and stack guards: this file checks
// what a normal build gets.

package gateway_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// An idle stream's goroutine parks with a 4 KiB stack, half of what an
// idle WebSocket costs in stacks (api's BenchmarkIdleConnMemory). The GC
// halves a parked stack only while under a quarter of it is used, so this
// doubles as soon as serve's waiting loop keeps a large frame on the stack:
// keep the work in the calls it makes.
func TestHubIdleStreamParksWithASmallStack(t *testing.T) {
	const streams = 500
	h := startHub(t, store.NewRing(100), gateway.HubConfig{})
	stackInUse := func() uint64 {
		for range 5 { // each GC halves a parked stack at most once
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse
	}
	before := stackInUse()
	sink := helloSink{hello: make(chan struct{}, streams)}
	done := make(chan error, streams)
	stops := make([]func(), 0, streams)
	for range streams {
		st, err := h.Open(gateway.Subscription{})
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, st.Go(sink, func(err error) { done <- err }))
		<-sink.hello // sent: the stream goes on to wait
	}
	per := float64(stackInUse()-before) / streams
	for _, stop := range stops {
		stop()
	}
	for range streams {
		<-done
	}
	t.Logf("%d idle streams: %.1f KiB of stack each", streams, per/1024)
	if per > 6<<10 {
		t.Fatalf("an idle stream's goroutine keeps %.1f KiB of stack, want 4", per/1024)
	}
}

// helloSink signals each Send (only hello lines, for idle streams) and
// keeps nothing.
type helloSink struct{ hello chan struct{} }

func (k helloSink) Send(context.Context, []gateway.Meta, []store.Record) (int, error) {
	k.hello <- struct{}{}
	return 1, nil
}
func (helloSink) Ping(context.Context) error        { return nil }
func (helloSink) Close(gateway.CloseReason, string) {}
