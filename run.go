package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// HTTP server limits (the contract's body and batch limits are flags, and
// so is --read-header-timeout). WriteTimeout is left unset because streams
// write for hours; handlers bound their own writes.
const (
	readTimeout    = 60 * time.Second
	idleTimeout    = 120 * time.Second
	maxHeaderBytes = 64 << 10
)

// run starts the gateway and blocks until ctx ends, then shuts down in the
// contract's order. It returns errHelp after --help, and an error when the
// configuration is invalid or the listener cannot be bound.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogFormat, stdout)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	ring, err := openLog(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer ring.close()
	pub := gateway.NewPublisher(ring.Log) // the log itself: the dispatcher looks for store.DeliveryQueues on it
	hub := gateway.NewHub(ring.Log, gateway.HubConfig{Queue: cfg.StreamQueue, QueueBytes: cfg.StreamQueueBytes, MaxClients: cfg.MaxStreams, Logger: logger, Registerer: reg,
		OnDrop: func(d gateway.Drop) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := pub.RecordStreamDrop(ctx, d); err != nil && !errors.Is(err, gateway.ErrDraining) {
				logger.Warn("could not record a stream drop", "err", err)
			}
		}})
	disp := dispatch.New(pub, dispatch.Config{
		Schedule:            cfg.RetrySchedule,
		Timeout:             cfg.DeliveryTimeout,
		Concurrency:         cfg.EndpointConcurrency,
		MaxRetrying:         cfg.MaxRetrying,
		MaxWebhooks:         cfg.MaxWebhooks,
		DisableAfter:        cfg.DisableAfter,
		Origin:              cfg.WebhookOrigin,
		AllowPrivateTargets: cfg.AllowPrivateTargets,
		Logger:              logger,
		Registerer:          reg,
		Webhooks:            ring.webhooks,
	})
	srv := api.New(api.Config{
		Publisher:      pub,
		Hub:            hub,
		Dispatcher:     disp,
		Capacity:       ring.capacity,
		Ready:          ring.ready,
		Keys:           cfg.APIKeys,
		TokenSecret:    cfg.TokenSecret,
		TokenPublicKey: cfg.TokenPublicKey,
		TokenMaxTTL:    cfg.TokenMaxTTL,
		MaxBody:        cfg.MaxBody,
		MaxBatch:       cfg.MaxBatch,
		MaxInflight:    cfg.MaxInflight,
		IngestRate:     cfg.IngestRate,
		IngestBurst:    cfg.IngestBurst,
		Addr:           cfg.Addr,
		AllowedHosts:   cfg.AllowedHosts,
		CORSOrigins:    cfg.CORSOrigins,
		Logger:         logger,
		Registry:       reg,
	})

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// The components' lifetimes: each Run returns after its goroutines
	// exit; run waits for all of them before it returns.
	compCtx, stopComponents := context.WithCancel(context.Background())
	defer stopComponents()
	hubDone, dispDone := make(chan error, 1), make(chan error, 1)
	go func() { hubDone <- hub.Run(compCtx) }()
	go func() { dispDone <- disp.Run(compCtx) }()
	defer func() {
		stopComponents()
		if err := <-hubDone; err != nil {
			logger.Warn("stream hub ended", "err", err)
		}
		if err := <-dispDone; err != nil {
			logger.Warn("dispatcher ended", "err", err)
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	var stopDebug func()
	if cfg.DebugAddr != "" {
		if stopDebug, err = startDebug(cfg.DebugAddr, logger); err != nil {
			_ = httpSrv.Close()
			if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("serve ended", "err", err)
			}
			return err
		}
	}

	url := "http://" + ln.Addr().String()
	logger.Info("eventgate listening", "addr", ln.Addr().String(), "dashboard", url+"/", "api", url+"/v1",
		"store", cfg.Store, "store_limits", ring.limits, "auth", len(cfg.APIKeys) > 0, "epoch", ring.Bounds().Epoch)
	if cfg.Store == "nats" && len(cfg.EncryptionKey) == 0 {
		logger.Warn("webhook secrets and custom header values are stored in clear in the NATS bucket: set --encryption-key to seal them")
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// The contract's shutdown order.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	_ = pub.Shutdown(drainCtx) // readyz 503, ingest 503; newest is now final
	logger.Info("ingest stopped", "last_seq", ring.Bounds().Newest)
	if err := hub.Shutdown(drainCtx); err != nil {
		logger.Warn("streams not flushed in time", "err", err)
	}
	if err := disp.Shutdown(drainCtx); err != nil {
		logger.Warn("deliveries not drained in time", "err", err)
	}
	if err := httpSrv.Shutdown(drainCtx); err != nil {
		logger.Warn("http shutdown incomplete", "err", err)
		_ = httpSrv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("serve ended", "err", err)
	}
	if stopDebug != nil {
		stopDebug()
	}
	logger.Info("stopped")
	return nil
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// startDebug serves pprof on its own loopback listener. stop closes it and
// returns once its Serve goroutine has ended.
func startDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline(os.Args))
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("debug server ended", "err", err)
		}
	}()
	logger.Info("pprof listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close(); <-done }, nil
}

// redactedCmdline serves what pprof.Cmdline does, the command line with
// its arguments separated by NULs, but with the values of secret flags
// replaced by REDACTED (see redactArgs).
func redactedCmdline(args []string) http.HandlerFunc {
	body := strings.Join(redactArgs(args), "\x00")
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}
}

// redactArgs returns args with the value of every secret flag (one whose
// name holds key, token, secret, password or creds, such as --api-key)
// replaced by REDACTED, in both the --flag=value and the --flag value
// forms, wherever they stand (after a "--" too: redacting too much is
// harmless). args[0] is the program.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !secretFlag(name) {
			continue
		}
		if hasValue {
			out[i] = a[:strings.Index(a, "=")+1] + "REDACTED"
		} else if i+1 < len(out) {
			out[i+1] = "REDACTED"
			i++
		}
	}
	return out
}

func secretFlag(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"key", "token", "secret", "password", "creds"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
