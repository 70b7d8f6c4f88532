package natsjs

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/eventgate/eventgate/store"
)

// The delivery log's messages. A message written now holds the states of
// one or more deliveries in the compact form: compactMark, then a JSON
// array of compactState. Short keys, times as Unix nanoseconds, and the
// webhook id (the subject names it) and the last attempt's figures (the
// newest attempt of History repeats them) left out make a state about a
// third of its store.Delivery JSON, so a message holds more of them for
// the same bytes read back by a listing.
//
// Messages of the first form (one store.Delivery as a JSON object, or a
// JSON array of them) are still read. The mark makes a compact message
// invalid JSON, so a gateway that reads only the first form (an older
// one, during a rolling upgrade) skips it instead of listing empty
// states.

// compactMark starts a message of compact states.
var compactMark = []byte("v2")

// compactState is a store.Delivery in the delivery log. A pointer field
// left out (nil) takes the value of the newest attempt in History, or
// zero when there is none; it is written only when it differs.
type compactState struct {
	ID          string               `json:"i"`
	EventSeq    uint64               `json:"q,omitempty"`
	EventID     string               `json:"e,omitempty"`
	Status      store.DeliveryStatus `json:"s"`
	Attempts    int                  `json:"a,omitempty"`
	StatusCode  *int                 `json:"sc,omitempty"` // LastStatusCode
	LastError   *string              `json:"le,omitempty"`
	LastAttempt *int64               `json:"la,omitempty"` // LastAttemptAt, Unix ns; 0: none
	Duration    *int64               `json:"d,omitempty"`
	NextAttempt int64                `json:"na,omitempty"` // NextAttemptAt, Unix ns; 0: none
	Created     int64                `json:"c"`
	Origin      string               `json:"o,omitempty"`
	History     []compactAttempt     `json:"h,omitempty"`
}

// compactAttempt is a store.AttemptRecord in the delivery log.
type compactAttempt struct {
	Start       int64  `json:"t"` // Unix ns
	Duration    int64  `json:"d,omitempty"`
	StatusCode  int    `json:"sc,omitempty"`
	Error       string `json:"er,omitempty"`
	Trigger     string `json:"tr,omitempty"`
	Response    string `json:"r,omitempty"`
	ContentType string `json:"ct,omitempty"`
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is unixNano's inverse, in UTC.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// compactOf returns d's compact form.
func compactOf(d *store.Delivery) compactState {
	c := compactState{
		ID: d.ID, EventSeq: d.EventSeq, EventID: d.EventID, Status: d.Status, Attempts: d.Attempts,
		NextAttempt: unixNano(d.NextAttemptAt), Created: unixNano(d.CreatedAt), Origin: d.Origin,
	}
	var last store.AttemptRecord
	if n := len(d.History); n > 0 {
		last = d.History[n-1]
		c.History = make([]compactAttempt, n)
		for i, a := range d.History {
			c.History[i] = compactAttempt{Start: unixNano(a.Start), Duration: int64(a.Duration), StatusCode: a.StatusCode,
				Error: a.Error, Trigger: a.Trigger, Response: a.Response, ContentType: a.ContentType}
		}
	}
	if d.LastStatusCode != last.StatusCode {
		c.StatusCode = &d.LastStatusCode
	}
	if d.LastError != last.Error {
		c.LastError = &d.LastError
	}
	if !d.LastAttemptAt.Equal(last.Start) {
		ns := unixNano(d.LastAttemptAt)
		c.LastAttempt = &ns
	}
	if d.Duration != last.Duration {
		ns := int64(d.Duration)
		c.Duration = &ns
	}
	return c
}

// delivery returns the store.Delivery c stands for, of webhook id.
func (c *compactState) delivery(webhookID string) store.Delivery {
	d := store.Delivery{
		ID: c.ID, WebhookID: webhookID, EventSeq: c.EventSeq, EventID: c.EventID, Status: c.Status, Attempts: c.Attempts,
		NextAttemptAt: fromUnixNano(c.NextAttempt), CreatedAt: fromUnixNano(c.Created), Origin: c.Origin,
	}
	if len(c.History) > 0 {
		d.History = make([]store.AttemptRecord, len(c.History))
		for i, a := range c.History {
			d.History[i] = store.AttemptRecord{Start: fromUnixNano(a.Start), Duration: time.Duration(a.Duration), StatusCode: a.StatusCode,
				Error: a.Error, Trigger: a.Trigger, Response: a.Response, ContentType: a.ContentType}
		}
		last := d.History[len(d.History)-1]
		d.LastStatusCode, d.LastError, d.LastAttemptAt, d.Duration = last.StatusCode, last.Error, last.Start, last.Duration
	}
	if c.StatusCode != nil {
		d.LastStatusCode = *c.StatusCode
	}
	if c.LastError != nil {
		d.LastError = *c.LastError
	}
	if c.LastAttempt != nil {
		d.LastAttemptAt = fromUnixNano(*c.LastAttempt)
	}
	if c.Duration != nil {
		d.Duration = time.Duration(*c.Duration)
	}
	return d
}

// decodeStates reads the states of one delivery-log message of webhook
// id, in either form.
func decodeStates(data []byte, webhookID string) ([]store.Delivery, error) {
	if rest, ok := bytes.CutPrefix(data, compactMark); ok {
		var cs []compactState
		if err := json.Unmarshal(rest, &cs); err != nil {
			return nil, err
		}
		out := make([]store.Delivery, len(cs))
		for i := range cs {
			out[i] = cs[i].delivery(webhookID)
		}
		return out, nil
	}
	if len(data) > 0 && data[0] == '[' {
		var states []store.Delivery
		err := json.Unmarshal(data, &states)
		return states, err
	}
	var d store.Delivery
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	return []store.Delivery{d}, nil
}
