package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
)

// roundTrip appends e to a fresh ring and decodes the stored JSON.
func roundTrip(t *testing.T, e store.Event) (store.Event, []byte) {
	t.Helper()
	r := store.NewRing(1)
	defer r.Close()
	if _, err := r.Append(context.Background(), []store.Event{e}, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Get(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Event
	if err := json.Unmarshal(rec.JSON, &back); err != nil {
		t.Fatalf("stored JSON %q is invalid: %v", rec.JSON, err)
	}
	return back, rec.JSON
}

func TestEncodeRoundTrips(t *testing.T) {
	cases := []store.Event{
		{ID: `quote"back\slash`, Type: "a.b", Source: "/\u2028line\u2029sep\x00ctl", Subject: "héllo 世界 <&>", Data: json.RawMessage(`{"a":[1,2,{"b":null}]}`)},
		{ID: "x", Type: "a.b", Source: "/", Data: json.RawMessage("{\n  \"pretty\": \"printed\",\r\n  \"n\": [1,\n 2]\n}")},
		{ID: "y", Type: "a.b", Source: "/", DataBase64: "AAEC", DataContentType: "application/octet-stream", Extensions: map[string]any{"traceparent": "00-1", "n": 3.5, "ok": true}},
		{ID: "z", Type: "a.b", Source: "/", Data: json.RawMessage(`null`), Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))},
		{ID: string([]byte{0xff, 'a'}), Type: "a.b", Source: "/", Data: json.RawMessage(`"s"`)},
	}
	for _, want := range cases {
		got, raw := roundTrip(t, want)
		for _, c := range raw {
			if c == '\n' || c == '\r' {
				t.Fatalf("stored JSON has a line break: %q", raw)
			}
		}
		if want.ID == string([]byte{0xff, 'a'}) {
			want.ID = "\ufffda" // invalid UTF-8 is replaced, as encoding/json does
		}
		if want.Data != nil {
			var a, b any
			_ = json.Unmarshal(want.Data, &a)
			_ = json.Unmarshal(got.Data, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("data %s, want %s", got.Data, want.Data)
			}
		}
		if got.Seq != 1 || got.ID != want.ID || got.Type != want.Type || got.Source != want.Source || got.Subject != want.Subject ||
			!got.Time.Equal(want.Time) || got.DataBase64 != want.DataBase64 || got.DataContentType != want.DataContentType ||
			!reflect.DeepEqual(got.Extensions, want.Extensions) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("evt_1", "/shop", "order/1", []byte(`{"n":1}`))
	f.Add("a\"b", "\u2028", "\x01", []byte("[1,\n2]"))
	f.Fuzz(func(t *testing.T, id, source, subject string, data []byte) {
		if !json.Valid(data) {
			return // Encode's contract: data is valid JSON
		}
		e := store.Event{ID: id, Type: "fuzz.event", Source: source, Subject: subject, Data: data}
		if err := e.Encode(); err != nil {
			t.Fatal(err)
		}
		got, _ := roundTrip(t, e)
		var want store.Event
		b, _ := json.Marshal(store.Event{ID: id, Source: source, Subject: subject})
		_ = json.Unmarshal(b, &want) // encoding/json's view of the strings
		if got.ID != want.ID || got.Source != want.Source || got.Subject != want.Subject {
			t.Fatalf("strings differ from encoding/json: got %q %q %q want %q %q %q", got.ID, got.Source, got.Subject, want.ID, want.Source, want.Subject)
		}
	})
}
