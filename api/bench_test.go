package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// bareEvent is what the baseline decodes: the same fields as an event.
type bareEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	Subject string          `json:"subject"`
	Time    string          `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// bareHandler is the baseline of the issue: a plain net/http handler that
// decodes the same JSON into a struct (strictly) and answers 202.
func bareHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if body[0] == '[' {
		var evs []bareEvent
		err = dec.Decode(&evs)
	} else {
		var ev bareEvent
		err = dec.Decode(&ev)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"seq":1,"id":"x"}`))
}

const benchEvent = `{"type":"order.created","source":"/shop","subject":"order/981","data":{"order":981,"customer":"c_2Jx8hHk2mN","items":[{"sku":"sku-123","qty":2}],"total":3998}}`

// ingestBody returns a request body of n events (n == 1: one object).
func ingestBody(n int) []byte {
	if n == 1 {
		return []byte(benchEvent)
	}
	return []byte("[" + strings.TrimSuffix(strings.Repeat(benchEvent+",", n), ",") + "]")
}

// BenchmarkIngest compares POST /v1/events through eventgate's handler with
// the bare baseline, side by side in one run, calling each handler directly
// (no sockets) from GOMAXPROCS goroutines. Compare events/s of the pairs.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{1, 100} {
		body := ingestBody(size)
		ring := store.NewRing(store.DefaultCapacity)
		pub := gateway.NewPublisher(ring)
		eventgate := api.New(api.Config{Publisher: pub, Hub: gateway.NewHub(ring, gateway.HubConfig{}), Dispatcher: dispatch.New(pub, dispatch.Config{})})
		for _, h := range []struct {
			name    string
			handler http.Handler
		}{{"bare", http.HandlerFunc(bareHandler)}, {"eventgate", eventgate}} {
			b.Run(fmt.Sprintf("batch=%d/%s", size, h.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						rec := httptest.NewRecorder()
						h.handler.ServeHTTP(rec, req)
						if rec.Code != http.StatusAccepted {
							b.Fatalf("status %d: %s", rec.Code, rec.Body)
						}
					}
				})
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
		}
		_ = ring.Close()
	}
}
