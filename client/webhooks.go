package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook is a registered webhook as the gateway shows it.
type Webhook struct {
	ID          string            `json:"id"` // "wh_…"
	URL         string            `json:"url"`
	Types       []string          `json:"types"`
	Description string            `json:"description"`
	Enabled     bool              `json:"enabled"`
	Headers     map[string]string `json:"headers"`    // sent with every delivery
	RateLimit   float64           `json:"rate_limit"` // attempts per second; 0 = none
	Handshake   bool              `json:"handshake"`
	// Status is "active", "disabled" or "awaiting_handshake".
	Status         string       `json:"status"`
	DisabledReason string       `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
	Stats          WebhookStats `json:"stats"`
	// Secret is the signing secret ("whsec_…"). The gateway shows it only
	// in the answer to CreateWebhook; elsewhere it is empty.
	Secret string `json:"secret,omitempty"`
	// Resumed is set by UpdateWebhook when the update re-enabled the
	// webhook: where delivery continues.
	Resumed *Resumed `json:"resumed,omitempty"`
}

// WebhookStats are a webhook's live delivery figures (see openapi.yaml).
type WebhookStats struct {
	InFlight           int     `json:"in_flight"`
	Retrying           int     `json:"retrying"`
	Succeeded          int64   `json:"succeeded"`
	Failed             int64   `json:"failed"`
	ArrivalRate        float64 `json:"arrival_rate"`           // λ, matching events per second
	MeanTimeInSystemMS float64 `json:"mean_time_in_system_ms"` // W
	InSystem           int64   `json:"in_system"`              // L
	Waiting            int64   `json:"waiting"`                // backlog in the log
}

// Resumed says where delivery continues after a re-enable: From is
// "cursor" or "newest", and delivery goes on with events after After.
type Resumed struct {
	From  string `json:"from"`
	After uint64 `json:"after"`
}

// WebhookCreate is the input of CreateWebhook. Only URL is required.
type WebhookCreate struct {
	URL         string            `json:"url"`
	Types       []string          `json:"types,omitempty"`  // default [">"]: every event
	Secret      string            `json:"secret,omitempty"` // default: generated
	Description string            `json:"description,omitempty"`
	Enabled     *bool             `json:"enabled,omitempty"` // default true
	Headers     map[string]string `json:"headers,omitempty"`
	RateLimit   float64           `json:"rate_limit,omitempty"`
	Handshake   bool              `json:"handshake,omitempty"`
}

// WebhookUpdate is the input of UpdateWebhook: nil fields stay as they
// are. Types and Headers replace the stored ones as a whole (an empty,
// non-nil map clears the headers). With Go 1.26, new(false) makes a *bool.
type WebhookUpdate struct {
	URL         *string           `json:"url,omitempty"`
	Types       []string          `json:"types,omitempty"`
	Description *string           `json:"description,omitempty"`
	Enabled     *bool             `json:"enabled,omitempty"`
	Headers     map[string]string `json:"headers,omitzero"`
	RateLimit   *float64          `json:"rate_limit,omitempty"`
	Handshake   *bool             `json:"handshake,omitempty"`
	// Resume, only with Enabled true on a disabled webhook: "cursor"
	// (default: deliver what was stored meanwhile) or "newest" (skip it).
	Resume string `json:"resume,omitempty"`
}

// CreateWebhook registers a webhook; the answer's Secret is the only time
// the gateway shows the secret. Delivery starts with events stored after
// registration (ReplayWebhook sends older ones). A URL on a loopback or
// private address is refused (*Error, 422) unless the gateway runs with
// --allow-private-targets. Not retried on network errors (it is not
// idempotent).
func (c *Client) CreateWebhook(ctx context.Context, w WebhookCreate) (*Webhook, error) {
	out := new(Webhook)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", body: w}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetWebhook returns the webhook with this id, with live stats; an *Error
// with StatusCode 404 when there is none.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	out := new(Webhook)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: webhookPath(id), safe: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListWebhooks returns every webhook, oldest first.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/webhooks", safe: true}, &out)
	return out.Webhooks, err
}

// UpdateWebhook changes the fields set in u and returns the webhook as
// it now is. Enabled false pauses deliveries (they wait); Enabled true
// resumes them, as Resume says.
func (c *Client) UpdateWebhook(ctx context.Context, id string, u WebhookUpdate) (*Webhook, error) {
	out := new(Webhook)
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: webhookPath(id), body: u, safe: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteWebhook removes the webhook, its pending deliveries and its
// delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: webhookPath(id)}, nil)
	return err
}

// RotatedSecret is the answer of RotateSecret.
type RotatedSecret struct {
	Secret                  string    `json:"secret"`                     // the new secret, shown once
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"` // the old one signs until then
}

// RotateSecret gives the webhook a new signing secret. For grace, the
// old secret keeps signing too (both signatures are sent), so receivers
// can switch at their own pace; 0 ends the old secret at once, at most
// 720h is accepted, and 24h is the gateway's usual choice.
func (c *Client) RotateSecret(ctx context.Context, id string, grace time.Duration) (*RotatedSecret, error) {
	body := struct {
		Grace string `json:"grace"`
	}{grace.String()}
	out := new(RotatedSecret)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(id) + "/rotate-secret", body: body}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Delivery is one event's delivery to one webhook. Fields that do not
// apply yet are zero.
type Delivery struct {
	ID             string    `json:"id"` // "dlv_…"
	EventSeq       uint64    `json:"event_seq"`
	EventID        string    `json:"event_id"` // empty for a record of overwritten events
	Status         string    `json:"status"`   // "pending", "retrying", "succeeded" or "failed"
	Attempts       int       `json:"attempts"`
	LastStatusCode int       `json:"last_status_code"` // 0: none received yet, a timeout or a connection error
	LastError      string    `json:"last_error"`
	LastAttemptAt  time.Time `json:"last_attempt_at"`
	NextAttemptAt  time.Time `json:"next_attempt_at"`
	DurationMS     float64   `json:"duration_ms"` // of the last attempt
}

// DeliveryOptions filters Deliveries.
type DeliveryOptions struct {
	Status string // "pending", "retrying", "succeeded" or "failed"; empty: all
	Limit  int    // 1 to 1000; 0: the gateway's default (50)
}

// Deliveries returns the webhook's delivery log, newest first (the
// gateway keeps the newest 1000 per webhook).
func (c *Client) Deliveries(ctx context.Context, id string, o DeliveryOptions) ([]Delivery, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	_, err := c.do(ctx, call{method: http.MethodGet, path: webhookPath(id) + "/deliveries", query: q, safe: true}, &out)
	return out.Deliveries, err
}

// RetryDelivery schedules an immediate attempt of a delivery, whatever its
// status, and returns the delivery as it now stands. An *Error with
// StatusCode 404 when the event is no longer buffered.
func (c *Client) RetryDelivery(ctx context.Context, id, deliveryID string) (*Delivery, error) {
	out := new(Delivery)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(id) + "/deliveries/" + url.PathEscape(deliveryID) + "/retry"}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// WebhookReplay is the answer of ReplayWebhook.
type WebhookReplay struct {
	Queued int  `json:"queued"` // matching buffered events queued for delivery
	Gap    *Gap `json:"gap"`    // the part of the range already overwritten
}

// ReplayWebhook re-delivers the buffered events with after < seq <= until
// that match the webhook's types (until 0 means up to the newest). One
// replay per webhook runs at a time: another gets an *Error with
// StatusCode 409.
func (c *Client) ReplayWebhook(ctx context.Context, id string, after, until uint64) (*WebhookReplay, error) {
	body := struct {
		After uint64 `json:"after"`
		Until uint64 `json:"until,omitempty"`
	}{after, until}
	out := new(WebhookReplay)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(id) + "/replay", body: body}, out); err != nil {
		return nil, err
	}
	return out, nil
}

func webhookPath(id string) string { return "/v1/webhooks/" + url.PathEscape(id) }
