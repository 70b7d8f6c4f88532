package store_test

import (
	"strings"
	"testing"

	"github.com/eventgate/eventgate/store"
)

func mustFilter(tb testing.TB, pats ...string) store.Filter {
	tb.Helper()
	f := store.Filter{} // empty, not nil: matches nothing
	for _, s := range pats {
		p, err := store.ParsePattern(s)
		if err != nil {
			tb.Fatal(err)
		}
		f = append(f, p)
	}
	return f
}

func TestFilterCovers(t *testing.T) {
	cases := []struct {
		scope []string
		p     string
		want  bool
	}{
		{[]string{"a.>"}, "a.*", true},
		{[]string{"a.>"}, "a.b.c", true},
		{[]string{"a.>"}, "a.>", true},
		{[]string{"a.>"}, "a", false},
		{[]string{"a.>"}, ">", false},
		{[]string{"a.>"}, "*.b", false},
		{[]string{"a.*"}, "a.b", true},
		{[]string{"a.*"}, "a.*", true},
		{[]string{"a.*"}, "a.>", false},
		{[]string{"a.b"}, "a.*", false},
		{[]string{"a.b", "a.*"}, "a.*", true},
		{[]string{"a.*", "a.*.>"}, "a.>", true}, // by two patterns
		{[]string{"a.*", "a.*.*"}, "a.>", false},
		{[]string{"*.*"}, "a.*", true},
		{[]string{"*.>"}, "a.b.>", true},
		{[]string{"user.42.>"}, "user.42.>", true},
		{[]string{"user.42.>"}, "user.*.>", false},
		{[]string{"user.42.>"}, "user.43.x", false},
		{[]string{">"}, ">", true},
		{[]string{"*"}, ">", false},
		{[]string{"*", "*.>"}, ">", true},
		{[]string{"a"}, "a.>", false},
		{nil, "a", false}, // empty scope covers nothing
	}
	for _, c := range cases {
		p, err := store.ParsePattern(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustFilter(t, c.scope...).Covers(p); got != c.want {
			t.Errorf("%v covers %q = %v, want %v", c.scope, c.p, got, c.want)
		}
	}
	var all store.Filter // nil matches every type
	if !all.Covers(mustFilter(t, ">")[0]) {
		t.Error("the nil Filter must cover >")
	}
}

// coverSegs is the alphabet of the naive reference: the patterns use a and
// b, types also c, a segment no pattern names.
var coverSegs = []string{"a", "b", "c"}

// allTypes lists every type over coverSegs with 1..depth segments.
func allTypes(depth int) []string {
	var out, level []string
	level = []string{""}
	for d := 1; d <= depth; d++ {
		var next []string
		for _, prefix := range level {
			for _, s := range coverSegs {
				t := s
				if prefix != "" {
					t = prefix + "." + s
				}
				next = append(next, t)
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

// fuzzPattern reads a pattern of at most 3 segments over a, b, * and >.
func fuzzPattern(s string) (store.Pattern, bool) {
	if strings.Count(s, ".") > 2 || strings.ContainsAny(s, "c") {
		return store.Pattern{}, false
	}
	for _, seg := range strings.Split(s, ".") {
		switch seg {
		case "a", "b", "*", ">":
		default:
			return store.Pattern{}, false
		}
	}
	p, err := store.ParsePattern(s)
	return p, err == nil
}

// FuzzFilterCovers checks Covers against enumeration: with patterns of at
// most 3 segments, types of up to 5 segments over a, b and c show every
// way a pattern can escape a scope (c stands for any unnamed segment,
// lengths past the longest pattern plus one behave alike).
func FuzzFilterCovers(f *testing.F) {
	for _, s := range []string{"a.* a.>", "a.> a.* a.*.>", "> *", "> * *.>", "a.b a.*", "a.*.> *.b.>", "*.> a.>", "a.b.c"} {
		f.Add(s)
	}
	types := allTypes(5)
	f.Fuzz(func(t *testing.T, in string) {
		fields := strings.Fields(in)
		if len(fields) == 0 || len(fields) > 5 {
			return
		}
		p, ok := fuzzPattern(fields[0])
		if !ok {
			return
		}
		scope := store.Filter{}
		for _, s := range fields[1:] {
			q, ok := fuzzPattern(s)
			if !ok {
				return
			}
			scope = append(scope, q)
		}
		want := true
		for _, typ := range types {
			if p.Match(typ) && !scope.Match(typ) {
				want = false
				break
			}
		}
		if got := scope.Covers(p); got != want {
			t.Fatalf("%v covers %q = %v, enumeration says %v", scope.Strings(), p, got, want)
		}
	})
}
