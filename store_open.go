package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/nats-io/nats.go"
)

// openedLog is the configured log with what run needs around it.
type openedLog struct {
	store.Log
	// webhooks is the registry: nil for the ring (the dispatcher keeps
	// its own in memory), the JetStream key-value registry with NATS,
	// shared by every gateway on it. (The NATS log also shares each
	// webhook's deliveries: the dispatcher finds store.DeliveryQueues on
	// it.)
	webhooks store.Webhooks
	capacity func() int
	limits   slog.Value   // the store's real limits, for the listening line
	ready    func() error // nil error: ready to take traffic
	close    func()       // closes the log, then whatever it runs on
}

// openLog opens the log --store names: the ring buffer, or a JetStream
// stream on an external or embedded NATS server.
func openLog(ctx context.Context, cfg config, logger *slog.Logger) (*openedLog, error) {
	if cfg.Store != "nats" {
		ring := store.NewRingConfig(store.RingConfig{Capacity: cfg.BufferSize, MaxBytes: cfg.BufferBytes})
		return &openedLog{Log: ring, capacity: ring.Capacity,
			limits: slog.GroupValue(slog.Int("capacity", ring.Capacity()), slog.Int64("max_bytes", ring.MaxBytes())),
			ready:  func() error { return nil }, close: func() { _ = ring.Close() }}, nil
	}
	ncfg := natsjs.Config{
		URL:      cfg.NATSURL,
		Options:  []nats.Option{nats.Name("eventgate"), nats.MaxReconnects(-1)},
		Replicas: cfg.NATSReplicas,
		MaxMsgs:  int64(cfg.BufferSize),
		MaxBytes: cfg.BufferBytes,
		MaxAge:   cfg.Retention,
		// Webhook secrets and header values sealed in the bucket.
		EncryptionKey: cfg.EncryptionKey,
		Logger:        logger.With("component", "natsjs"),
	}
	if cfg.NATSCreds != "" {
		ncfg.Options = append(ncfg.Options, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSTLSCA != "" {
		ncfg.Options = append(ncfg.Options, nats.RootCAs(cfg.NATSTLSCA))
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.NATSEmbedded {
		srv, err := natsembed.Start(natsembed.Config{DataDir: cfg.DataDir, Logger: logger.With("component", "nats-server")})
		if err != nil {
			return nil, fmt.Errorf("start embedded NATS in %s: %w", cfg.DataDir, err)
		}
		closers = append(closers, srv.Shutdown)
		conn, err := srv.Connect(nats.Name("eventgate"))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("connect to embedded NATS: %w", err)
		}
		closers = append(closers, conn.Close)
		ncfg.Conn = conn
	}
	l, err := natsjs.Open(ctx, ncfg)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("open the JetStream log: %w", err)
	}
	closers = append(closers, func() { _ = l.Close() })
	hooks, err := l.OpenWebhooks(ctx)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("open the JetStream webhook registry: %w", err)
	}
	limits := l.Limits()
	return &openedLog{Log: l, webhooks: hooks, capacity: func() int { return int(limits.MaxMsgs) }, limits: limits.LogValue(),
		ready: l.Ready, close: closeAll}, nil
}
