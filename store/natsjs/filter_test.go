package natsjs

import (
	"slices"
	"testing"
)

func TestFilterSubjects(t *testing.T) {
	l := &Log{subj: "p.events."}
	for _, c := range []struct {
		types []string
		want  []string
	}{
		{nil, []string{"p.events.>"}},
		{[]string{"a.b"}, []string{"p.events.a.b"}},
		{[]string{"a.*", "a.b", "c.>"}, []string{"p.events.a.*", "p.events.c.>"}},
		{[]string{"a.>", "a.*.c", "a.b"}, []string{"p.events.a.>"}},
		{[]string{"a.b", "a.b"}, []string{"p.events.a.b"}},
		{[]string{"a.*.c", "a.b.>"}, []string{"p.events.>"}}, // overlap, neither covers: all, filtered by the gateway
		{[]string{"a", "a.>"}, []string{"p.events.a", "p.events.a.>"}},
		{[]string{"*.b", "a.*"}, []string{"p.events.>"}},
	} {
		if got := l.filterSubjects(c.types); !slices.Equal(got, c.want) {
			t.Errorf("filterSubjects(%q) = %q, want %q", c.types, got, c.want)
		}
	}
}
