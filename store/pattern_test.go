package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, typ string
		want         bool
	}{
		{"order.created", "order.created", true},
		{"order.created", "order.created.x", false},
		{"order.created", "order", false},
		{"order.*", "order.created", true},
		{"order.*", "order.item.added", false},
		{"order.*", "order", false},
		{"order.>", "order.created", true},
		{"order.>", "order.item.added", true},
		{"order.>", "order", false},
		{"order.>", "orders.created", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*.created", "user.created", true},
		{"*.created", "user.deleted", false},
		{"*.*.added", "order.item.added", true},
		{"a.*.>", "a.b.c", true},
		{"a.*.>", "a.b", false},
		{"billing.invoice-paid", "billing.invoice-paid", true},
		{"order.*", "", false},
		{">", "", false},
	}
	for _, c := range cases {
		p, err := store.ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", c.pattern, err)
		}
		if got := p.Match(c.typ); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.typ, got, c.want)
		}
	}
}

func TestParsePatternRejects(t *testing.T) {
	for _, p := range []string{"", ".", "a.", ".a", "a..b", ">.a", "a.>.b", "a*", "a.b>", "*a", "a b", "a/b", "ä", strings.Repeat("a", 129)} {
		if _, err := store.ParsePattern(p); !errors.Is(err, store.ErrInvalidPattern) {
			t.Errorf("ParsePattern(%q) error = %v, want ErrInvalidPattern", p, err)
		}
	}
}

func TestValidType(t *testing.T) {
	for typ, want := range map[string]bool{
		"order.created": true, "billing.invoice-paid": true, "a": true, "A_1-b.c": true,
		strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
		"": false, "a.": false, ".a": false, "a..b": false, "a.*": false, "a.>": false, "a b": false, "é": false,
	} {
		if got := store.ValidType(typ); got != want {
			t.Errorf("ValidType(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestFilter(t *testing.T) {
	all, err := store.ParseFilter([]string{"x.y", ">"})
	if err != nil || all != nil || !all.Match("any.thing") {
		t.Fatalf("a filter with '>' should be the match-all nil filter: %v %v", all, err)
	}
	f, err := store.ParseFilter([]string{"order.*", "user.created"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match("order.paid") || !f.Match("user.created") || f.Match("user.deleted") {
		t.Fatal("filter matched wrongly")
	}
	if got := strings.Join(f.Strings(), ","); got != "order.*,user.created" {
		t.Fatalf("Strings() = %q", got)
	}
	if _, err := store.ParseFilter([]string{"ok", "bad..one"}); err == nil {
		t.Fatal("ParseFilter accepted an invalid pattern")
	}
}

// naiveMatch is the reference: segment-by-segment comparison.
func naiveMatch(pattern, typ string) bool {
	if !store.ValidType(typ) {
		return false
	}
	ps, ts := strings.Split(pattern, "."), strings.Split(typ, ".")
	for i, p := range ps {
		if p == ">" {
			return len(ts) > i
		}
		if i >= len(ts) || (p != "*" && p != ts[i]) {
			return false
		}
	}
	return len(ps) == len(ts)
}

func FuzzPatternMatch(f *testing.F) {
	for _, s := range [][2]string{{"order.*", "order.created"}, {"order.>", "order.item.added"}, {">", "a"}, {"*.b", "a.b"}, {"a.b", "a.b."}, {"a.*.>", "a.b.c.d"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		p, err := store.ParsePattern(pattern)
		if err != nil {
			return
		}
		got := p.Match(typ) // must not panic, whatever typ is
		if !store.ValidType(typ) {
			return // stored types are always valid; Match need not judge others
		}
		if want := naiveMatch(pattern, typ); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", pattern, typ, got, want)
		}
	})
}
