// Package store holds eventgate's nouns (Event, Record, Pattern, Webhook,
// Delivery) and the contracts of its backends (Log). The in-memory Ring is
// the default Log; it uses the standard library only.
package store

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"strconv"
	"sync"
	"time"
)

// Event is the one JSON shape of an event: what ingest produces and what
// replay pages, stream messages and webhook bodies carry. Seq is assigned by
// the Log; the other fields are set before Append.
type Event struct {
	Seq             uint64          `json:"seq"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
	Extensions      map[string]any  `json:"extensions,omitempty"`

	enc  []byte // headroom + encoded event without seq; see Encode
	key  string // IdempotencyKey(Source, ID), set by Encode
	hash uint64 // maphash of key, set by Encode
}

// seqHeadroom is room in front of an encoded event for `{"seq":N,`.
const seqHeadroom = len(`{"seq":18446744073709551615,`)

// keySeed seeds the idempotency index's hashes for the process lifetime.
var keySeed = maphash.MakeSeed()

var encoders = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Encode encodes e once, ready for Append to stamp its seq in place, and
// computes its idempotency key. Append calls it for events not yet encoded;
// callers may call it earlier (outside any lock) to move the cost off the
// append path. An encoded Event belongs to one Append: its bytes become the
// stored record and must not be appended again. Fields changed after Encode
// are not seen by Append.
func (e *Event) Encode() error {
	if e.enc != nil {
		return nil
	}
	buf := encoders.Get().(*bytes.Buffer)
	defer encoders.Put(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	seq := e.Seq
	e.Seq = 0
	err := enc.Encode(e)
	e.Seq = seq
	if err != nil {
		return err
	}
	// buf is `{"seq":0,"id":...}\n`: keep `"id":...}` behind the headroom.
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))[len(`{"seq":0,`):]
	e.enc = make([]byte, seqHeadroom+len(body))
	copy(e.enc[seqHeadroom:], body)
	e.key = IdempotencyKey(e.Source, e.ID)
	e.hash = maphash.String(keySeed, e.key)
	return nil
}

// stamp writes `{"seq":N,` into the headroom and returns the complete JSON.
// It does not allocate.
func (e *Event) stamp(seq uint64) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq, 10)
	start := seqHeadroom - len(`{"seq":`) - len(d) - 1
	n := copy(e.enc[start:], `{"seq":`)
	n += copy(e.enc[start+n:], d)
	e.enc[start+n] = ','
	return e.enc[start:]
}

// Record is a stored event as readers see it: its seq, the fields readers
// filter and log by, and its JSON (the exact bytes every reader sends).
// A Record and its JSON are immutable: never modify JSON.
type Record struct {
	Seq      uint64
	ID       string
	Type     string
	StoredAt int64 // Unix nanoseconds when the log stored it
	JSON     []byte
}

// Appended is the outcome of appending one event.
type Appended struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
	// Duplicate is true when source+id repeated an event still buffered;
	// Seq is then the original's and nothing was stored.
	Duplicate bool `json:"duplicate,omitempty"`
}

// IdempotencyKey is the key under which a Log de-duplicates events.
func IdempotencyKey(source, id string) string { return source + "\x00" + id }
