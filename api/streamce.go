package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

// ceCacheSize is how many converted events the CloudEvents cache keeps:
// enough that subscribers a little behind each other share conversions.
const ceCacheSize = 4096

// ceCache converts stored events to structured CloudEvents once, shared by
// every cloudevents.json subscriber: a direct-mapped table keyed by seq
// (seqs are unique within the one log a Server serves). Lock-free; a miss
// converts and replaces the slot. Safe for concurrent use.
type ceCache struct {
	slots [ceCacheSize]atomic.Pointer[ceEntry]
}

type ceEntry struct {
	seq  uint64
	json []byte
}

func newCECache() *ceCache { return new(ceCache) }

// get returns rec as a structured CloudEvent (shared bytes: never modify).
func (c *ceCache) get(rec store.Record) ([]byte, error) {
	slot := &c.slots[rec.Seq%ceCacheSize]
	if e := slot.Load(); e != nil && e.seq == rec.Seq {
		return e.json, nil
	}
	b, err := recordCloudEvent(rec.JSON)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", rec.Seq, err)
	}
	slot.Store(&ceEntry{seq: rec.Seq, json: b})
	return b, nil
}

// storedEvent is an event's JSON as stored, decoded for conversion; raw
// values are kept as they are.
type storedEvent struct {
	Seq             uint64                     `json:"seq"`
	ID              string                     `json:"id"`
	Type            string                     `json:"type"`
	Source          string                     `json:"source"`
	Subject         string                     `json:"subject"`
	Time            json.RawMessage            `json:"time"`
	DataContentType string                     `json:"datacontenttype"`
	Data            json.RawMessage            `json:"data"`
	DataBase64      string                     `json:"data_base64"`
	Extensions      map[string]json.RawMessage `json:"extensions"`
}

// recordCloudEvent maps a stored event's JSON to a structured CloudEvent
// 1.0: the context attributes, data or data_base64, the extensions at the
// top level, and the seq extension as a decimal string.
func recordCloudEvent(raw []byte) ([]byte, error) {
	var e storedEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotEvent, err)
	}
	var b bytes.Buffer
	b.Grow(len(raw) + 64)
	b.WriteString(`{"specversion":"1.0"`)
	attr := func(name, v string) {
		b.WriteString(`,"` + name + `":`)
		q, _ := store.MarshalJSON(v) // a string always marshals
		b.Write(q)
	}
	attr("id", e.ID)
	attr("source", e.Source)
	attr("type", e.Type)
	if e.Subject != "" {
		attr("subject", e.Subject)
	}
	if len(e.Time) > 0 {
		b.WriteString(`,"time":`)
		b.Write(e.Time)
	}
	switch {
	case e.DataBase64 != "":
		if e.DataContentType != "" {
			attr("datacontenttype", e.DataContentType)
		}
		attr("data_base64", e.DataBase64)
	default:
		ct := e.DataContentType
		if ct == "" {
			ct = "application/json"
		}
		attr("datacontenttype", ct)
		if len(e.Data) > 0 {
			b.WriteString(`,"data":`)
			b.Write(e.Data)
		}
	}
	names := make([]string, 0, len(e.Extensions))
	for name := range e.Extensions {
		if name != "seq" && !ceAttributes[name] || name == "dataschema" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		b.WriteString(`,"` + name + `":`) // extension names are [a-z0-9]{1,20}
		b.Write(e.Extensions[name])
	}
	b.WriteString(`,"seq":"`)
	b.WriteString(strconv.FormatUint(e.Seq, 10))
	b.WriteString(`"}`)
	return b.Bytes(), nil
}

// metaCloudEvent maps a hello, gap or reset line to a CloudEvent of type
// eventgate.stream.<kind> from /eventgate, with no seq.
func metaCloudEvent(m gateway.Meta) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"specversion":"1.0","id":"`...)
	b = append(b, gateway.NewEventID()...)
	b = append(b, `","source":"/eventgate","type":"eventgate.stream.`...)
	b = append(b, m.Kind.String()...)
	b = append(b, `","time":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","datacontenttype":"application/json","data":`...)
	b = m.AppendData(b)
	return append(b, '}')
}
