package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is an event as the gateway stores and serves it, and the input of
// Publish and PublishBatch.
//
// To publish, set Type and Data; ID, Source, Subject and Time are
// optional (see Publish for ID). Seq, DataContentType, DataBase64 and
// Extensions are set by the gateway (the latter three only on events
// that came in as CloudEvents) and must be left empty when publishing.
type Event struct {
	Seq     uint64    `json:"seq,omitempty"`     // position in the log, from 1, gap-free
	ID      string    `json:"id,omitempty"`      // unique per Source; the idempotency key with Source
	Type    string    `json:"type"`              // dot-separated segments, e.g. "order.created"
	Source  string    `json:"source,omitempty"`  // default "/"
	Subject string    `json:"subject,omitempty"` // what the event is about, within Source
	Time    time.Time `json:"time,omitzero"`     // default: when the gateway received it
	// Data is the payload. When publishing, any value encoding/json can
	// encode (nil is JSON null; a json.RawMessage is sent as is). In events
	// read from the gateway it is a json.RawMessage (nil when the event
	// has DataBase64 instead): decode it with UnmarshalData.
	Data            any            `json:"data"`
	DataContentType string         `json:"datacontenttype,omitempty"` // CloudEvents events only
	DataBase64      string         `json:"data_base64,omitempty"`     // non-JSON CloudEvents data, base64
	Extensions      map[string]any `json:"extensions,omitempty"`      // CloudEvents extension attributes
}

// UnmarshalJSON decodes an event as the gateway serves it, keeping Data as
// a json.RawMessage.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var v struct {
		plain
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Event(v.plain)
	e.Data = nil
	if v.Data != nil {
		e.Data = v.Data
	}
	return nil
}

// UnmarshalData decodes e.Data into v, as json.Unmarshal does.
func (e Event) UnmarshalData(v any) error {
	raw, ok := e.Data.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(e.Data); err != nil {
			return err
		}
	}
	return json.Unmarshal(raw, v)
}

// input is an event as POST /v1/events takes it (EventInput).
type input struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Source  string    `json:"source,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Data    any       `json:"data"`
}

func toInput(e Event) (input, error) {
	if e.Seq != 0 || e.DataContentType != "" || e.DataBase64 != "" || len(e.Extensions) > 0 {
		return input{}, errors.New("eventgate: Seq, DataContentType, DataBase64 and Extensions are set by the gateway; leave them empty to publish")
	}
	if e.ID == "" {
		e.ID = NewID()
	}
	return input{ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time, Data: e.Data}, nil
}

// NewID returns a new random event id: a UUID version 7 (48 bits of Unix
// milliseconds, then 74 random bits), so ids sort by time. Publish uses it
// for events without an ID.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	binary.BigEndian.PutUint64(u[:8], uint64(time.Now().UnixMilli())<<16|uint64(binary.BigEndian.Uint16(u[6:8])))
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // variant 10
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// Published says where one published event stands in the log.
type Published struct {
	Seq uint64 `json:"seq"` // its seq: the original event's when Duplicate
	ID  string `json:"id"`  // its id, the generated one if the event had none
	// Duplicate is true when the event repeated the Source+ID of an event
	// still buffered (a retry of one already stored) and was not stored
	// again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Publish stores one event and returns its seq and id.
//
// An event without an ID gets one from NewID before the first attempt,
// so every retry (see RetryPolicy; network failures included) carries the
// same Source+ID and the gateway stores the event at most once: a repeat
// is answered with the original seq and Duplicate set. Invalid events
// fail with an *Error (422) naming each bad field.
func (c *Client) Publish(ctx context.Context, e Event) (Published, error) {
	in, err := toInput(e)
	if err != nil {
		return Published{}, err
	}
	var p Published
	_, err = c.do(ctx, call{method: http.MethodPost, path: "/v1/events", body: in, safe: true}, &p)
	return p, err
}

// PublishBatch stores events all-or-nothing, with consecutive seqs in
// input order (duplicates aside), and returns one result per event in the
// same order. IDs are generated and retries made as for Publish. If any
// event is invalid, nothing is stored and the *Error lists every bad
// field as "/<index>/<field>". An empty batch does nothing.
func (c *Client) PublishBatch(ctx context.Context, events []Event) ([]Published, error) {
	if len(events) == 0 {
		return nil, nil
	}
	ins := make([]input, len(events))
	for i, e := range events {
		in, err := toInput(e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		ins[i] = in
	}
	var out struct {
		Events []Published `json:"events"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/events", body: ins, safe: true}, &out)
	return out.Events, err
}

// GetEvent returns the buffered event with this seq; an *Error with
// StatusCode 404 when it is not (or no longer) buffered.
func (c *Client) GetEvent(ctx context.Context, seq uint64) (Event, error) {
	var e Event
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/events/" + strconv.FormatUint(seq, 10), safe: true}, &e)
	return e, err
}

// ReplayOptions selects the events Replay and Page read.
type ReplayOptions struct {
	After uint64   // read events with seq > After; 0 reads from the oldest buffered
	Types []string // type patterns ("order.*", "billing.>"); none means all
	// Epoch, when set, is the epoch After was taken in (Page.Epoch,
	// Cursor.Epoch). If the gateway's log has another, Replay yields an
	// *EpochError and stops; Page ignores it.
	Epoch string
	Limit int // events per request, 1 to 1000; 0 means the gateway's default (100)
}

// Page is one answer of GET /v1/events.
type Page struct {
	Events []Event `json:"events"` // oldest first
	Next   uint64  `json:"next"`   // pass as After to read on
	Oldest uint64  `json:"oldest"` // oldest buffered seq, 0 when the buffer is empty
	Newest uint64  `json:"newest"` // newest buffered seq, 0 when the buffer is empty
	Epoch  string  `json:"epoch"`  // this lifetime of the log
	Gap    *Gap    `json:"gap"`    // set when events after After were overwritten
}

// Gap is a range of seqs, From to To inclusive, that was overwritten before
// it could be read.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Page reads one page of buffered events: those with seq > o.After,
// oldest first, at most o.Limit of them.
func (c *Client) Page(ctx context.Context, o ReplayOptions) (*Page, error) {
	q := url.Values{"after": {strconv.FormatUint(o.After, 10)}}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(o.Types) > 0 {
		q.Set("type", strings.Join(o.Types, ","))
	}
	p := new(Page)
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/events", query: q, safe: true}, p)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Replay iterates over the buffered events after o.After that match
// o.Types, oldest first, page by page, until it has caught up with the
// newest event (as of the last page read). Events stored while it runs
// are included up to that point; to follow the log live, use Subscribe.
//
// Errors are yielded with a zero Event:
//   - *GapError, once per gap, when events were overwritten before they
//     could be read; iteration goes on with the oldest buffered event.
//   - *EpochError when the log is not the one o.Epoch (or the first page)
//     came from; iteration ends.
//   - any error of a request (after retries), or ctx's; iteration ends.
//
// Breaking out of the loop stops it; nothing is left running.
func (c *Client) Replay(ctx context.Context, o ReplayOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		epoch := o.Epoch
		for {
			p, err := c.Page(ctx, o)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if epoch == "" {
				epoch = p.Epoch
			} else if p.Epoch != epoch {
				yield(Event{}, &EpochError{Want: epoch, Got: p.Epoch})
				return
			}
			if p.Gap != nil && !yield(Event{}, &GapError{From: p.Gap.From, To: p.Gap.To}) {
				return
			}
			for _, e := range p.Events {
				if !yield(e, nil) {
					return
				}
			}
			if p.Next <= o.After || p.Next >= p.Newest {
				return // caught up (or no progress: nothing more to read)
			}
			o.After = p.Next
		}
	}
}
