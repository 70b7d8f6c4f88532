// Package store holds eventgate's nouns (Event, Record, Pattern, Webhook,
// Delivery) and the contracts of its backends (Log). The in-memory Ring is
// the default Log; it uses the standard library only.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
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
	hash uint64 // idempotencyHash(Source, ID), set by Encode
}

// seqHeadroom is room in front of an encoded event for `{"seq":N,`.
const seqHeadroom = len(`{"seq":18446744073709551615,`)

// keySeed seeds the idempotency index's hashes for the process lifetime.
var keySeed = maphash.MakeSeed()

var encoders = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Encode encodes e once, ready for Append to stamp its seq in place, and
// computes its idempotency key. Append calls it for events not yet encoded;
// callers may call it earlier (outside any lock) to move the cost off the
// append path. Data must be valid JSON (as decoding a request guarantees);
// it is kept as given, except that line breaks are compacted away so that
// every encoded event is one line (NDJSON, SSE). An encoded Event belongs to
// one Append: its bytes become the stored record and must not be appended
// again. Fields changed after Encode are not seen by Append.
func (e *Event) Encode() error {
	if e.enc != nil {
		return nil
	}
	bp := encoders.Get().(*[]byte)
	defer encoders.Put(bp)
	b := append((*bp)[:0], make([]byte, seqHeadroom)...)
	b = appendField(b, `"id":`, e.ID)
	b = appendField(b, `,"type":`, e.Type)
	b = appendField(b, `,"source":`, e.Source)
	if e.Subject != "" {
		b = appendField(b, `,"subject":`, e.Subject)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.DataContentType != "" {
		b = appendField(b, `,"datacontenttype":`, e.DataContentType)
	}
	if e.Data != nil {
		b = append(b, `,"data":`...)
		if bytes.IndexByte(e.Data, '\n') >= 0 || bytes.IndexByte(e.Data, '\r') >= 0 { // vectorised, unlike ContainsAny
			var c bytes.Buffer
			if err := json.Compact(&c, e.Data); err != nil {
				return fmt.Errorf("data: %w", err)
			}
			b = append(b, c.Bytes()...)
		} else {
			b = append(b, e.Data...)
		}
	}
	if e.DataBase64 != "" {
		b = appendField(b, `,"data_base64":`, e.DataBase64)
	}
	if len(e.Extensions) > 0 {
		ext, err := MarshalJSON(e.Extensions)
		if err != nil {
			return fmt.Errorf("extensions: %w", err)
		}
		b = append(b, `,"extensions":`...)
		b = append(b, ext...)
	}
	b = append(b, '}')
	*bp = b
	e.enc = bytes.Clone(b)
	e.hash = idempotencyHash(e.Source, e.ID)
	return nil
}

// MarshalJSON is json.Marshal without HTML escaping: '<', '>' and '&'
// stay as they are ("order.>", not "order.\u003e"); every JSON the
// gateway writes goes through it or an encoder set the same way.
func MarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// appendField appends name, then s as a JSON string.
func appendField(b []byte, name, s string) []byte {
	return AppendJSONString(append(b, name...), s)
}

// AppendJSONString appends s to b as a JSON string. Plain printable ASCII
// (the usual id, type and source) is copied as is, without allocating;
// anything else is escaped by encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := MarshalJSON(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// stamp writes `{"seq":N,` into the headroom and returns the complete JSON.
// It does not allocate.
func (e *Event) stamp(seq uint64) []byte { return StampSeq(e.enc, seq) }

// SeqHeadroom is the number of bytes reserved in front of an unsequenced
// encoding (see Unsequenced) for StampSeq to write `{"seq":N,` into.
const SeqHeadroom = seqHeadroom

// Unsequenced returns e's encoding without its seq: SeqHeadroom reserved
// bytes followed by the event's members and closing brace (`"id":…}`).
// It calls Encode first. The slice is e's own: a backend that stores it
// elsewhere (store/natsjs publishes it) may overwrite the headroom, which
// belongs to whichever Log appends e.
func (e *Event) Unsequenced() ([]byte, error) {
	if err := e.Encode(); err != nil {
		return nil, err
	}
	return e.enc, nil
}

// StampSeq writes `{"seq":N,` right-aligned into the first SeqHeadroom
// bytes of b, an unsequenced encoding as Unsequenced returns, and returns
// the complete event JSON: a subslice of b. It does not allocate; b must
// not be shared with another reader.
func StampSeq(b []byte, seq uint64) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq, 10)
	start := seqHeadroom - len(`{"seq":`) - len(d) - 1
	n := copy(b[start:], `{"seq":`)
	n += copy(b[start+n:], d)
	b[start+n] = ','
	return b[start:]
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

// IdempotencyKey is the key under which a Log de-duplicates events: the
// length of source as a uvarint, then source, then id. The length prefix
// keeps any two (source, id) pairs apart, whatever bytes (NUL included)
// they hold; a separator alone would not ("shop\x00x"+"42" and
// "shop"+"x\x0042" once shared a key).
func IdempotencyKey(source, id string) string {
	b := make([]byte, 0, binary.MaxVarintLen64+len(source)+len(id))
	b = binary.AppendUvarint(b, uint64(len(source)))
	return string(append(append(b, source...), id...))
}

// idempotencyHash hashes IdempotencyKey(source, id) without building it.
func idempotencyHash(source, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(keySeed)
	var n [binary.MaxVarintLen64]byte
	_, _ = h.Write(binary.AppendUvarint(n[:0], uint64(len(source))))
	_, _ = h.WriteString(source)
	_, _ = h.WriteString(id)
	return h.Sum64()
}
