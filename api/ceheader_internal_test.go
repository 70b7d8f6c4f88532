package api

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeCEHeader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"room%20%C3%A9t%C3%A9", "room été"},
		{"50% off", "50% off"},
		{"a%41b", "a%41b"},
		{"100%25", "100%"},
		{"say %22hi%22", `say "hi"`},
		{"tab%09here", "tab\there"},
		{"half %E2%82", "half %E2%82"},
		{"euro %E2%82%AC", "euro €"},
		{"bad%zz", "bad%zz"},
		{"end%", "end%"},
		{"end%2", "end%2"},
		{"\xfcn\xefc\xf8d\xe9", "ünïcødé"},
		{"\xe9%20x", "é x"},
		{"lone %FF byte", "lone %FF byte"},
		{"ünïcødé", "ünïcødé"},
	} {
		if got := decodeCEHeader(tc.in); got != tc.want {
			t.Errorf("decodeCEHeader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzDecodeCEHeader: the result is valid UTF-8, holds U+FFFD only where
// the input did, and a value with no '%' and valid UTF-8 is kept as is.
func FuzzDecodeCEHeader(f *testing.F) {
	for _, s := range []string{"a%41b", "%C3%A9", "\xfc", "%E2%82", "%%%", "%EF%BF%BD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := decodeCEHeader(in)
		if !utf8.ValidString(out) {
			t.Fatalf("%q -> %q: not UTF-8", in, out)
		}
		if strings.ContainsRune(out, utf8.RuneError) && !strings.ContainsRune(in, utf8.RuneError) {
			t.Fatalf("%q -> %q: U+FFFD made up", in, out)
		}
		if utf8.ValidString(in) && !strings.Contains(in, "%") && out != in {
			t.Fatalf("%q -> %q: changed", in, out)
		}
	})
}
