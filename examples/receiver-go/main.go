// Command receiver-go is a webhook receiver for eventgate that verifies
// every delivery's Standard Webhooks signature with the stdlib-only
// package github.com/eventgate/eventgate/gateway/signature, and skips
// deliveries it has already handled (every delivery is at least once; the
// webhook-id header is the same on every retry).
//
//	EVENTGATE_WEBHOOK_SECRET=whsec_… go run ./examples/receiver-go -addr 127.0.0.1:9000
//
// During a secret rotation, set EVENTGATE_WEBHOOK_SECRET to the new secret
// and EVENTGATE_WEBHOOK_SECRET_OLD to the old one: either signature is
// accepted. See examples/README.md for the whole walk-through.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("receiver-go", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	path := fs.String("path", "/hooks/eventgate", "the path the webhook posts to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var secrets []signature.Secret
	for _, name := range []string{"EVENTGATE_WEBHOOK_SECRET", "EVENTGATE_WEBHOOK_SECRET_OLD"} {
		if v := getenv(name); v != "" {
			s, err := signature.ParseSecret(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return errors.New("set EVENTGATE_WEBHOOK_SECRET to the secret CreateWebhook (or POST /v1/webhooks) returned")
	}
	logger := slog.New(slog.NewTextHandler(out, nil))

	v := &signature.Verifier{Secrets: secrets}
	seen := newSeen(10000)
	mux := http.NewServeMux()
	mux.Handle("POST "+*path, v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Verified: r.Body is the exact body the gateway signed.
		msgID := r.Header.Get(signature.HeaderID)
		if !seen.add(msgID) {
			logger.Info("duplicate delivery skipped", "webhook_id", msgID)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var ev struct {
			Seq  uint64          `json:"seq"`
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest) // retried by the gateway
			return
		}
		logger.Info("event", "webhook_id", msgID, "seq", ev.Seq, "type", ev.Type, "data", string(ev.Data))
		w.WriteHeader(http.StatusNoContent) // any 2xx: delivered
	})))

	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("receiver listening", "addr", *addr, "path", *path)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// seen remembers the last n webhook ids, to skip repeats. A real receiver
// keeps them where its effects are stored (the same transaction).
type seen struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	order []string
	n     int
}

func newSeen(n int) *seen { return &seen{ids: make(map[string]struct{}, n), n: n} }

// add records id and reports whether it was new.
func (s *seen) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if len(s.order) == s.n {
		delete(s.ids, s.order[0])
		s.order = s.order[1:]
	}
	s.ids[id] = struct{}{}
	s.order = append(s.order, id)
	return true
}
