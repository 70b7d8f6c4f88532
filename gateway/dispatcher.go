package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// DispatcherConfig configures a Dispatcher; zero fields mean the documented
// defaults.
type DispatcherConfig struct {
	Schedule            []time.Duration // --retry-schedule
	Timeout             time.Duration   // --delivery-timeout
	Concurrency         int             // --endpoint-concurrency
	MaxRetrying         int             // --max-retrying
	DisableAfter        time.Duration   // --disable-after
	AllowPrivateTargets bool            // --allow-private-targets
	Logger              *slog.Logger
	Registerer          prometheus.Registerer
}

// Dispatcher delivers stored events to webhooks: each endpoint is a cursor
// over the log. TODO(webhooks): implement.
type Dispatcher struct {
	log store.Log
	pub *Publisher
	cfg DispatcherConfig
}

// NewDispatcher returns a Dispatcher reading pub's log; pub also publishes
// the gateway's operational events. It starts nothing.
func NewDispatcher(pub *Publisher, cfg DispatcherConfig) *Dispatcher {
	return &Dispatcher{log: pub.Log(), pub: pub, cfg: cfg}
}

// Run blocks until ctx ends or Shutdown completes.
func (d *Dispatcher) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Shutdown stops reading new events and keeps delivering what is pending
// until nothing is left or ctx ends; then it logs what is undelivered.
func (d *Dispatcher) Shutdown(ctx context.Context) error { return nil }
