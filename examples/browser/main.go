// Command browser is the "streams for your users" example: an app's
// backend, on another origin than the gateway, that serves a page and
// mints a short-lived token for its signed-in user (here always user 42)
// through the gateway's POST /v1/tokens. The page subscribes to that
// user's events only, and fetches a new token and resumes where it
// stopped when the gateway ends the stream because the token expired.
//
//	go run . --api-key k --token-secret "$(openssl rand -hex 32)" --cors-origins http://127.0.0.1:3000
//	EVENTGATE_URL=http://127.0.0.1:8080 EVENTGATE_API_KEY=k go run ./examples/browser
//
// then open http://127.0.0.1:3000/ and publish user.42.* events.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"
)

//go:embed index.html app.js
var page embed.FS

func main() {
	gateway := envOr("EVENTGATE_URL", "http://127.0.0.1:8080")
	key := os.Getenv("EVENTGATE_API_KEY")
	addr := envOr("ADDR", "127.0.0.1:3000")
	hc := &http.Client{Timeout: 10 * time.Second}

	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(page))
	// The page asks its own backend for a token; the backend, which holds
	// the gateway's API key, asks the gateway to mint one for this user.
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]any{"sub": "user-42", "subscribe": []string{"user.42.>"}, "ttl": "1m"})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, gateway+"/v1/tokens", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"gateway": gateway})
	})

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("open http://%s/ (gateway %s)", addr, gateway)
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
