package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// bareEvent is what the baselines decode: the fields of an input event.
type bareEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	Subject string          `json:"subject"`
	Time    string          `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// decodeBare reads a body of one event or an array of them (batch),
// strictly (unknown fields are errors), as the baseline does.
func decodeBare(w http.ResponseWriter, r *http.Request) (evs []bareEvent, batch bool, err error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		return nil, false, err
	}
	if len(body) == 0 {
		return nil, false, errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if body[0] == '[' {
		err = dec.Decode(&evs)
		return evs, true, err
	}
	var ev bareEvent
	err = dec.Decode(&ev)
	return []bareEvent{ev}, false, err
}

// bareIngest is the ingest baseline: a plain net/http handler that decodes
// the same JSON strictly into structs and answers 202.
func bareIngest(w http.ResponseWriter, r *http.Request) {
	if _, _, err := decodeBare(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"seq":1,"id":"x"}`))
}

// bareHub is the fan-out baseline: a plain WebSocket hub. POST /v1/events
// assigns seqs and encodes the request's events once as one NDJSON
// message; every client has one writer goroutine and a buffered channel of
// messages, and a client whose channel is full is dropped.
type bareHub struct {
	mu      sync.Mutex
	seq     uint64
	clients map[chan []byte]struct{}
}

// hubQueue is the messages a bare-hub client may lag.
const hubQueue = 1024

func (h *bareHub) publish(w http.ResponseWriter, r *http.Request) {
	evs, batch, err := decodeBare(w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg []byte
	h.mu.Lock()
	first := h.seq + 1
	for i := range evs {
		ev := &evs[i]
		msg = append(msg, `{"seq":`...)
		msg = strconv.AppendUint(msg, first+uint64(i), 10)
		msg = append(msg, `,"type":`...)
		msg = strconv.AppendQuote(msg, ev.Type)
		msg = append(msg, `,"data":`...)
		msg = append(msg, ev.Data...)
		msg = append(msg, "}\n"...)
	}
	h.seq += uint64(len(evs))
	for c := range h.clients {
		select {
		case c <- msg:
		default: // too slow: drop it, never block the publisher
			delete(h.clients, c)
			close(c)
		}
	}
	h.mu.Unlock()
	// The answer has eventgate's shape, so the load tool reads both alike.
	out := make([]byte, 0, 32*len(evs)+16)
	if !batch {
		out = fmt.Appendf(out, `{"seq":%d,"id":"x"}`, first)
	} else {
		out = append(out, `{"events":[`...)
		for i := range evs {
			if i > 0 {
				out = append(out, ',')
			}
			out = fmt.Appendf(out, `{"seq":%d,"id":"x"}`, first+uint64(i))
		}
		out = append(out, "]}"...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(out)
}

func (h *bareHub) stream(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(r.Context())
	c := make(chan []byte, hubQueue)
	h.mu.Lock()
	newest := h.seq
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if _, ok := h.clients[c]; ok {
			delete(h.clients, c)
			close(c)
		}
		h.mu.Unlock()
	}()
	hello := fmt.Appendf(nil, `{"hello":{"epoch":"bare","oldest":0,"newest":%d}}`+"\n", newest)
	if err := conn.Write(ctx, websocket.MessageText, hello); err != nil {
		return
	}
	for {
		select {
		case msg, ok := <-c:
			if !ok {
				_ = conn.Close(websocket.StatusPolicyViolation, "slow consumer")
				return
			}
			if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// serveBare runs a baseline server ("bare" or "bare-hub") until ctx ends:
// the hidden subcommands serve-bare and serve-bare-hub.
func serveBare(ctx context.Context, kind string, args []string) error {
	fs := flag.NewFlagSet("serve-"+kind, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	switch kind {
	case targetBare:
		mux.HandleFunc("POST /v1/events", bareIngest)
	case targetBareHub:
		h := &bareHub{clients: map[chan []byte]struct{}{}}
		mux.HandleFunc("POST /v1/events", h.publish)
		mux.HandleFunc("GET /v1/stream", h.stream)
	default:
		return fmt.Errorf("unknown baseline %q", kind)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close() // hijacked WebSocket conns end when the process exits
	<-errc
	return nil
}
