package api

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/store"
	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
)

// webhookRoutes adds the /webhooks routes to r, the /v1 router.
func (s *Server) webhookRoutes(r chi.Router) {
	r.Post("/webhooks", s.createWebhook)
	r.Get("/webhooks", s.listWebhooks)
	r.Get("/webhooks/{id}", s.getWebhook)
	r.Patch("/webhooks/{id}", s.updateWebhook)
	r.Delete("/webhooks/{id}", s.deleteWebhook)
	r.Get("/webhooks/{id}/deliveries", s.listDeliveries)
	r.Get("/webhooks/{id}/deliveries/{delivery_id}", s.getDelivery)
	r.Post("/webhooks/{id}/deliveries/{delivery_id}/retry", s.retryDelivery)
	r.Post("/webhooks/{id}/rotate-secret", s.rotateSecret)
	r.Post("/webhooks/{id}/replay", s.replayWebhook)
}

// webhookCreate is the body of POST /v1/webhooks.
type webhookCreate struct {
	URL         string            `json:"url" validate:"required,max=2048,http_url"`
	Types       []string          `json:"types" validate:"omitnil,min=1,max=100,dive,pattern"`
	Secret      string            `json:"secret" validate:"omitempty,whsecret"`
	Description string            `json:"description" validate:"max=1024"`
	Enabled     *bool             `json:"enabled"`
	Headers     map[string]string `json:"headers"` // checked by dispatch.CheckHeaders
	RateLimit   float64           `json:"rate_limit" validate:"ratelimit"`
	Handshake   bool              `json:"handshake"`
}

// webhookPatch is the body of PATCH /v1/webhooks/{id}.
type webhookPatch struct {
	URL         *string            `json:"url" validate:"omitnil,max=2048,http_url"`
	Types       *[]string          `json:"types" validate:"omitnil,min=1,max=100,dive,pattern"`
	Description *string            `json:"description" validate:"omitnil,max=1024"`
	Enabled     *bool              `json:"enabled"`
	Resume      string             `json:"resume" validate:"omitempty,oneof=cursor newest"`
	Headers     *map[string]string `json:"headers"` // checked by dispatch.CheckHeaders
	RateLimit   *float64           `json:"rate_limit" validate:"omitnil,ratelimit"`
	Handshake   *bool              `json:"handshake"`
}

// webhookJSON is a webhook as answered; Secret only in the create answer.
type webhookJSON struct {
	ID             string            `json:"id"`
	URL            string            `json:"url"`
	Types          []string          `json:"types"`
	Description    string            `json:"description"`
	Enabled        bool              `json:"enabled"`
	Headers        map[string]string `json:"headers"`
	RateLimit      float64           `json:"rate_limit"`
	Handshake      bool              `json:"handshake"`
	Status         string            `json:"status"`
	DisabledReason string            `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Stats          statsJSON         `json:"stats"`
	Secret         string            `json:"secret,omitempty"`
	// Resumed is set in the answer of a PATCH that re-enabled the webhook.
	Resumed *resumedJSON `json:"resumed,omitempty"`
}

// resumedJSON says where a re-enabled webhook continues.
type resumedJSON struct {
	From  string `json:"from"`
	After uint64 `json:"after"`
}

type statsJSON struct {
	InFlight         int     `json:"in_flight"`
	Retrying         int     `json:"retrying"`
	Succeeded        uint64  `json:"succeeded"`
	Failed           uint64  `json:"failed"`
	ArrivalRate      float64 `json:"arrival_rate"`
	MeanTimeInSystem float64 `json:"mean_time_in_system_ms"`
	InSystem         int     `json:"in_system"`
	Waiting          int     `json:"waiting"`
}

func (s *Server) webhookOut(w store.Webhook) webhookJSON {
	st := s.cfg.Dispatcher.Stats(w.ID)
	out := webhookJSON{
		ID: w.ID, URL: w.URL, Types: w.Types, Description: w.Description, Enabled: w.Enabled,
		Headers: w.Headers, RateLimit: w.RateLimit, Handshake: w.Handshake, Status: "active",
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		Stats: statsJSON{
			InFlight: st.InFlight, Retrying: st.Retrying, Succeeded: st.Succeeded, Failed: st.Failed,
			ArrivalRate:      st.ArrivalRate,
			MeanTimeInSystem: float64(st.MeanTimeInSystem.Microseconds()) / 1000,
			InSystem:         st.InSystem,
			Waiting:          st.Waiting,
		},
	}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	switch {
	case !w.Enabled:
		out.Status, out.DisabledReason = "disabled", w.DisabledReason
	case w.AwaitingHandshake:
		out.Status = "awaiting_handshake"
	}
	return out
}

// deliveryJSON is a delivery as answered; absent facts are null.
type deliveryJSON struct {
	ID             string     `json:"id"`
	EventSeq       uint64     `json:"event_seq"`
	EventID        *string    `json:"event_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	DurationMS     *float64   `json:"duration_ms"`
	Origin         string     `json:"origin"` // "live" or "replay"
}

func deliveryOut(d store.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, EventSeq: d.EventSeq, Status: string(d.Status), Attempts: d.Attempts, Origin: "live"}
	if d.Origin != "" {
		out.Origin = d.Origin
	}
	if d.EventID != "" {
		out.EventID = &d.EventID
	}
	if d.LastStatusCode != 0 {
		out.LastStatusCode = &d.LastStatusCode
	}
	if d.LastError != "" {
		out.LastError = &d.LastError
	}
	if !d.LastAttemptAt.IsZero() {
		t := d.LastAttemptAt.UTC()
		out.LastAttemptAt = &t
	}
	if !d.NextAttemptAt.IsZero() && (d.Status == store.DeliveryPending || d.Status == store.DeliveryRetrying) {
		t := d.NextAttemptAt.UTC()
		out.NextAttemptAt = &t
	}
	if d.Attempts > 0 {
		ms := float64(d.Duration.Microseconds()) / 1000
		out.DurationMS = &ms
	}
	return out
}

// decodeWebhookBody reads a JSON object body into v (unknown fields
// refused) and validates it. On failure it writes the problem and returns
// false.
func (s *Server) decodeWebhookBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != ctJSON {
		fail(w, http.StatusUnsupportedMediaType, "Content-Type must be "+ctJSON)
		return false
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBufs.Put(buf)
	if !s.readBody(w, r, buf) {
		return false
	}
	if err := jsonv2.Unmarshal(buf.Bytes(), v, strictJSON); err != nil {
		if fe, ok := decodeFieldError("", err); ok {
			fail(w, http.StatusUnprocessableEntity, "the webhook is invalid", fe)
			return false
		}
		writeProblem(w, *badJSON(err.Error()))
		return false
	}
	if err := s.validate.Struct(v); err != nil {
		fail(w, http.StatusUnprocessableEntity, "the webhook is invalid", fieldErrors("", err)...)
		return false
	}
	return true
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in webhookCreate
	if !s.decodeWebhookBody(w, r, &in) {
		return
	}
	if !headersValid(w, in.Headers) {
		return
	}
	hook := store.Webhook{URL: in.URL, Types: in.Types, Secret: in.Secret, Description: in.Description, Enabled: in.Enabled == nil || *in.Enabled,
		Headers: in.Headers, RateLimit: in.RateLimit, Handshake: in.Handshake}
	created, err := s.cfg.Dispatcher.Create(r.Context(), hook)
	if err != nil {
		s.Error(w, r, "create webhook", err)
		return
	}
	out := s.webhookOut(created)
	out.Secret = created.Secret
	w.Header().Set("Location", "/v1/webhooks/"+created.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	hooks, err := s.cfg.Dispatcher.List(r.Context())
	if err != nil {
		s.Error(w, r, "list webhooks", err)
		return
	}
	out := make([]webhookJSON, len(hooks))
	for i, h := range hooks {
		out[i] = s.webhookOut(h)
	}
	writeJSON(w, http.StatusOK, struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}{out})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	hook, err := s.cfg.Dispatcher.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.Error(w, r, "get webhook", noSuch("webhook", err))
		return
	}
	writeJSON(w, http.StatusOK, s.webhookOut(hook))
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := s.cfg.Dispatcher.Get(r.Context(), id); err != nil {
		s.Error(w, r, "update webhook", noSuch("webhook", err))
		return
	}
	var in webhookPatch
	if !s.decodeWebhookBody(w, r, &in) {
		return
	}
	if in.Resume != "" && (in.Enabled == nil || !*in.Enabled) {
		fail(w, http.StatusUnprocessableEntity, "the update is invalid", FieldError{Field: "/resume", Message: "is allowed only together with enabled: true"})
		return
	}
	if in.Headers != nil && !headersValid(w, *in.Headers) {
		return
	}
	u := dispatch.WebhookUpdate{URL: in.URL, Description: in.Description, Enabled: in.Enabled, ResumeNewest: in.Resume == "newest",
		Headers: in.Headers, RateLimit: in.RateLimit, Handshake: in.Handshake}
	if in.Types != nil {
		u.Types = *in.Types
	}
	hook, resumed, err := s.cfg.Dispatcher.Update(r.Context(), id, u)
	if err != nil {
		s.Error(w, r, "update webhook", noSuch("webhook", err))
		return
	}
	out := s.webhookOut(hook)
	if resumed != nil {
		out.Resumed = &resumedJSON{From: resumed.From, After: resumed.After}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Dispatcher.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		s.Error(w, r, "delete webhook", noSuch("webhook", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Delivery log limits.
const (
	defaultDeliveryLimit = 50
	maxDeliveryLimit     = 1000
)

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := store.DeliveryStatus(q.Get("status"))
	if status != "" && !status.Valid() {
		fail(w, http.StatusBadRequest, "status must be one of pending, succeeded, retrying, failed")
		return
	}
	limit := defaultDeliveryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeliveryLimit {
			fail(w, http.StatusBadRequest, "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	dls, err := s.cfg.Dispatcher.Deliveries(chi.URLParam(r, "id"), status, limit, q.Get("before"))
	if err != nil {
		s.Error(w, r, "list deliveries", noSuch("webhook", err))
		return
	}
	out := make([]deliveryJSON, len(dls))
	for i, d := range dls {
		out[i] = deliveryOut(d)
	}
	writeJSON(w, http.StatusOK, struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}{out})
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Dispatcher.Retry(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery_id"))
	if err != nil {
		s.Error(w, r, "retry delivery", noSuch("delivery", err))
		return
	}
	writeJSON(w, http.StatusAccepted, deliveryOut(d))
}

// headersValid writes a 422 listing every refused custom header and
// reports false, or reports true when the headers are fine.
func headersValid(w http.ResponseWriter, h map[string]string) bool {
	errs := dispatch.CheckHeaders(h)
	if len(errs) == 0 {
		return true
	}
	fes := make([]FieldError, len(errs))
	for i, e := range errs {
		fes[i] = headerField(e)
	}
	slices.SortFunc(fes, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	fail(w, http.StatusUnprocessableEntity, "the webhook's headers are refused", fes...)
	return false
}

// headerField is the field error of a refused custom header.
func headerField(e *dispatch.HeaderError) FieldError {
	field := "/headers"
	if e.Name != "" {
		field += "/" + jsonPointerEscape(e.Name)
	}
	return FieldError{Field: field, Message: e.Reason}
}

// jsonPointerEscape escapes a JSON pointer token (RFC 6901).
func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// attemptRecordJSON is one attempt in a delivery's history.
type attemptRecordJSON struct {
	StartedAt           time.Time `json:"started_at"`
	DurationMS          float64   `json:"duration_ms"`
	StatusCode          *int      `json:"status_code"`
	Error               *string   `json:"error"`
	Trigger             string    `json:"trigger"`
	ResponseBody        *string   `json:"response_body"`
	ResponseContentType *string   `json:"response_content_type"`
}

// deliveryDetailJSON is a delivery with its attempt history and event.
type deliveryDetailJSON struct {
	deliveryJSON
	Attempts     []attemptRecordJSON `json:"attempts"`
	AttemptCount int                 `json:"attempt_count"`
	Event        json.RawMessage     `json:"event"`
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, event, err := s.cfg.Dispatcher.Delivery(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery_id"))
	if err != nil {
		s.Error(w, r, "get delivery", noSuch("delivery", err))
		return
	}
	out := deliveryDetailJSON{deliveryJSON: deliveryOut(d), AttemptCount: d.Attempts, Attempts: make([]attemptRecordJSON, len(d.History))}
	for i, a := range d.History {
		j := attemptRecordJSON{StartedAt: a.Start.UTC(), DurationMS: float64(a.Duration.Microseconds()) / 1000, Trigger: a.Trigger}
		if a.StatusCode != 0 {
			j.StatusCode = &a.StatusCode
		}
		if a.Error != "" {
			j.Error = &a.Error
		}
		if a.Response != "" || a.StatusCode != 0 {
			j.ResponseBody = &a.Response
		}
		if a.ContentType != "" {
			j.ResponseContentType = &a.ContentType
		}
		out.Attempts[i] = j
	}
	out.Event = json.RawMessage("null")
	if event != nil {
		out.Event = event
	}
	writeJSON(w, http.StatusOK, out)
}
