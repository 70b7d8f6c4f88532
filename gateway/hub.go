package gateway

import (
	"context"
	"log/slog"

	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// HubConfig configures a Hub; zero fields mean the documented defaults.
type HubConfig struct {
	// Queue is how many events a client may lag before it is cut off
	// (--stream-queue, default 10000).
	Queue      int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Hub serves live streams: every client is a cursor over the log.
// TODO(streams): implement.
type Hub struct {
	log store.Log
	cfg HubConfig
}

// NewHub returns a Hub reading log. It starts nothing.
func NewHub(log store.Log, cfg HubConfig) *Hub { return &Hub{log: log, cfg: cfg} }

// Run blocks until ctx ends or Shutdown completes.
func (h *Hub) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Shutdown sends every client everything up to the log's newest seq, then
// closes them (1001 for WebSocket), waiting until ctx ends.
func (h *Hub) Shutdown(ctx context.Context) error { return nil }
