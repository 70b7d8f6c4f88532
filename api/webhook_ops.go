package api

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/store"
	"github.com/go-chi/chi/v5"
)

// DefaultTailHeartbeat is how often an idle delivery tail gets a
// keep-alive comment.
const DefaultTailHeartbeat = 15 * time.Second

// tailWriteTimeout bounds one write to a delivery tail: a client that
// stops reading is cut off, its handler never hangs.
const tailWriteTimeout = 10 * time.Second

// rotateRequest is the body of POST /v1/webhooks/{id}/rotate-secret.
type rotateRequest struct {
	Grace *string `json:"grace"`
}

// rotateJSON is its answer.
type rotateJSON struct {
	Secret                  string    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// decodeOptionalBody is decodeWebhookBody for a body that may be absent
// (no Content-Length, or zero): v then keeps its zero value.
func (s *Server) decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	return s.decodeWebhookBody(w, r, v)
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.cfg.Dispatcher.Get(r.Context(), id); err != nil {
		s.Error(w, r, "rotate secret", noSuch("webhook", err))
		return
	}
	var in rotateRequest
	if !s.decodeOptionalBody(w, r, &in) {
		return
	}
	grace := dispatch.DefaultGrace
	if in.Grace != nil {
		g, err := time.ParseDuration(*in.Grace)
		if err != nil || g < 0 || g > dispatch.MaxRotationGrace {
			fail(w, http.StatusUnprocessableEntity, "the rotation is invalid", FieldError{Field: "/grace",
				Message: fmt.Sprintf("must be a duration from 0s to %s, such as 24h or 90m", dispatch.MaxRotationGrace)})
			return
		}
		grace = g
	}
	secret, expires, err := s.cfg.Dispatcher.RotateSecret(r.Context(), id, grace)
	if err != nil {
		s.Error(w, r, "rotate secret", noSuch("webhook", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, rotateJSON{Secret: secret, PreviousSecretExpiresAt: expires})
}

// replayRequest is the body of POST /v1/webhooks/{id}/replay.
type replayRequest struct {
	After *uint64 `json:"after"`
	Until *uint64 `json:"until"`
}

// replayJSON is its answer.
type replayJSON struct {
	Queued int        `json:"queued"`
	Gap    *store.Gap `json:"gap,omitempty"`
}

func (s *Server) replayWebhook(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.cfg.Dispatcher.Get(r.Context(), id); err != nil {
		s.Error(w, r, "replay webhook", noSuch("webhook", err))
		return
	}
	var in replayRequest
	if !s.decodeOptionalBody(w, r, &in) {
		return
	}
	after, until := uint64(0), uint64(math.MaxUint64)
	if in.After != nil {
		after = *in.After
	}
	if in.Until != nil {
		until = *in.Until
		if until < after {
			fail(w, http.StatusUnprocessableEntity, "the replay range is invalid", FieldError{Field: "/until", Message: "must not be less than after"})
			return
		}
	}
	res, err := s.cfg.Dispatcher.Replay(r.Context(), id, after, until)
	if err != nil {
		s.Error(w, r, "replay webhook", noSuch("webhook", err))
		return
	}
	writeJSON(w, http.StatusAccepted, replayJSON{Queued: res.Queued, Gap: res.Gap})
}

// attemptJSON is one DeliveryAttempt on the delivery tail.
type attemptJSON struct {
	DeliveryID    string     `json:"delivery_id"`
	EventSeq      uint64     `json:"event_seq"`
	Attempt       int        `json:"attempt"`
	Status        string     `json:"status"`
	StatusCode    *int       `json:"status_code"`
	DurationMS    float64    `json:"duration_ms"`
	Error         *string    `json:"error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	At            time.Time  `json:"at"`
}

func attemptOut(a dispatch.Attempt) attemptJSON {
	out := attemptJSON{DeliveryID: a.DeliveryID, EventSeq: a.EventSeq, Attempt: a.Attempt, Status: string(a.Status),
		DurationMS: float64(a.Duration.Microseconds()) / 1000, At: a.At.UTC()}
	if a.StatusCode != 0 {
		out.StatusCode = &a.StatusCode
	}
	if a.Error != "" {
		out.Error = &a.Error
	}
	if !a.NextAttemptAt.IsZero() {
		t := a.NextAttemptAt.UTC()
		out.NextAttemptAt = &t
	}
	return out
}

// tailDeliveries serves GET /v1/webhooks/{id}/deliveries/stream: every
// finished attempt of the webhook as one SSE message, keep-alive comments
// while idle. It ends when the client goes, when the dispatcher drops the
// tail (fallen behind, webhook deleted, shutdown) or when a write stalls.
func (s *Server) tailDeliveries(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.cfg.Dispatcher.Get(r.Context(), id); err != nil {
		s.Error(w, r, "tail deliveries", noSuch("webhook", err))
		return
	}
	tail, err := s.cfg.Dispatcher.TailDeliveries(id)
	if err != nil {
		s.Error(w, r, "tail deliveries", noSuch("webhook", err))
		return
	}
	defer tail.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(tailWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": delivery tail of " + id + "\n\n")) {
		return
	}
	heartbeat := s.cfg.TailHeartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultTailHeartbeat
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case a, ok := <-tail.C:
			if !ok {
				if tail.Dropped() {
					write([]byte(": dropped: this client fell behind\n\n"))
				}
				return
			}
			buf = buf[:0]
		batch: // everything ready goes out in one flush
			for {
				line, _ := store.MarshalJSON(attemptOut(a))
				buf = append(append(append(buf, "data: "...), line...), "\n\n"...)
				select {
				case a, ok = <-tail.C:
					if !ok {
						break batch // closed: the outer loop sees it next
					}
				default:
					break batch
				}
			}
			if !write(buf) {
				return
			}
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
