package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestNewID checks the id format (prefix + a ULID carrying the time now)
// and that ids do not repeat.
func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"evt_", "dlv_", "wh_", "a_long_prefix_"} {
		before := time.Now().Add(-time.Millisecond)
		for range 10000 {
			id := NewID(prefix, time.Now())
			rest, ok := strings.CutPrefix(id, prefix)
			if !ok {
				t.Fatalf("%q lacks the prefix %q", id, prefix)
			}
			u, err := ulid.ParseStrict(rest)
			if err != nil {
				t.Fatalf("%q: %v", id, err)
			}
			if ts := ulid.Time(u.Time()); ts.Before(before) || ts.After(time.Now().Add(time.Millisecond)) {
				t.Fatalf("%q carries time %v, not now", id, ts)
			}
			if seen[id] {
				t.Fatalf("%q repeated", id)
			}
			seen[id] = true
		}
	}
}

func BenchmarkNewEventID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewEventID()
	}
}
