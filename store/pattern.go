package store

import (
	"errors"
	"fmt"
	"strings"
)

// MaxTypeLen is the longest event type accepted, in bytes.
const MaxTypeLen = 128

// ErrInvalidPattern is returned by ParsePattern for a malformed pattern.
var ErrInvalidPattern = errors.New("invalid type pattern")

// Pattern is a NATS-style subject pattern over the dot-separated segments of
// an event type: `*` matches exactly one segment and `>` (last only) matches
// one or more trailing segments. The zero Pattern matches nothing; a Pattern
// is immutable and safe for concurrent use.
type Pattern struct {
	text     string
	segments []string // literal segments, or "*" / ">"
	exact    bool     // no wildcard: match by string equality
}

// ParsePattern parses p. It fails with ErrInvalidPattern when p is empty,
// longer than MaxTypeLen, has an empty segment, a segment that mixes a
// wildcard with other characters, a `>` that is not last, or a character
// outside [A-Za-z0-9_-].
func ParsePattern(p string) (Pattern, error) {
	if p == "" || len(p) > MaxTypeLen {
		return Pattern{}, fmt.Errorf("%w: length must be 1-%d", ErrInvalidPattern, MaxTypeLen)
	}
	segs := strings.Split(p, ".")
	exact := true
	for i, s := range segs {
		switch {
		case s == "":
			return Pattern{}, fmt.Errorf("%w: %q has an empty segment", ErrInvalidPattern, p)
		case s == "*":
			exact = false
		case s == ">":
			if i != len(segs)-1 {
				return Pattern{}, fmt.Errorf("%w: %q: '>' must be the last segment", ErrInvalidPattern, p)
			}
			exact = false
		case !validSegment(s):
			return Pattern{}, fmt.Errorf("%w: %q: segments are [A-Za-z0-9_-]+, '*' or a final '>'", ErrInvalidPattern, p)
		}
	}
	return Pattern{text: p, segments: segs, exact: exact}, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// Match reports whether the event type t matches p. t is a valid type (see
// ValidType); for any other string the answer is unspecified. It does not
// allocate.
func (p Pattern) Match(t string) bool {
	if p.exact {
		return t == p.text
	}
	for i, seg := range p.segments {
		if seg == ">" {
			return t != "" // one or more remaining segments
		}
		if t == "" {
			return false
		}
		var cur string
		if dot := strings.IndexByte(t, '.'); dot >= 0 {
			cur, t = t[:dot], t[dot+1:]
			if t == "" {
				return false // trailing dot: not a valid type
			}
		} else {
			cur, t = t, ""
		}
		if cur == "" || (seg != "*" && seg != cur) {
			return false
		}
		if i == len(p.segments)-1 {
			return t == ""
		}
	}
	return false
}

// ValidType reports whether t is a valid event type: 1-128 bytes of
// dot-separated [A-Za-z0-9_-]+ segments.
func ValidType(t string) bool {
	if t == "" || len(t) > MaxTypeLen {
		return false
	}
	start := 0
	for i := 0; i <= len(t); i++ {
		if i == len(t) || t[i] == '.' {
			if i == start {
				return false
			}
			start = i + 1
			continue
		}
		if !segmentByte(t[i]) {
			return false
		}
	}
	return true
}

func validSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if !segmentByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func segmentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Filter is a set of patterns; an event matches when any pattern matches.
// The nil Filter matches every event.
type Filter []Pattern

// ParseFilter parses each pattern; an empty list gives the nil Filter.
func ParseFilter(patterns []string) (Filter, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	f := make(Filter, 0, len(patterns))
	for _, p := range patterns {
		pt, err := ParsePattern(p)
		if err != nil {
			return nil, err
		}
		if pt.text == ">" {
			return nil, nil // matches everything
		}
		f = append(f, pt)
	}
	return f, nil
}

// Match reports whether t matches any pattern of f (always true for nil).
func (f Filter) Match(t string) bool {
	if f == nil {
		return true
	}
	for _, p := range f {
		if p.Match(t) {
			return true
		}
	}
	return false
}

// cost is about how many segment comparisons f.Match makes at most per
// event (at least 1).
func (f Filter) cost() int {
	c := 1
	for _, p := range f {
		if p.exact {
			c++
		} else {
			c += len(p.segments)
		}
	}
	return c
}

// Strings returns the patterns as written (">" for the nil Filter).
func (f Filter) Strings() []string {
	if f == nil {
		return []string{">"}
	}
	out := make([]string, len(f))
	for i, p := range f {
		out[i] = p.text
	}
	return out
}

// MaxFilterPatterns is the most patterns one filter may have: a webhook's
// types, a replay's type=, a stream's types=. Each pattern costs every
// event a reader examines a test, so the API refuses more.
const MaxFilterPatterns = 100

// Covers reports whether every event type p matches is matched by at
// least one pattern of f: p is "inside" f. The nil Filter covers every
// pattern; an empty one covers none. So `a.*` is inside `a.>` and `a.b`
// inside `a.*`, but `>` is inside only a filter that matches everything,
// and `a.>` is inside {`a.*`, `a.*.>`} (each length by another pattern).
//
// Segments are unbounded here: the MaxTypeLen cap on types is ignored, so
// a pattern covered only because longer types cannot exist is reported
// not covered (the safe answer). It does not allocate. The zero Pattern
// matches nothing and is covered by any f.
func (f Filter) Covers(p Pattern) bool {
	if f == nil || p.segments == nil {
		return true
	}
	n := len(p.segments)
	if p.segments[n-1] != ">" {
		return f.coversFixed(p.segments)
	}
	// p is prefix.>: it matches prefix plus k >= 1 segments. A pattern of f
	// longer than the prefix plus k cannot match such a type, so past the
	// longest pattern of f only a '>' covers, and it covers every longer k
	// once it covers one: checking k up to that length plus one decides.
	prefix := p.segments[:n-1]
	longest := 0
	for _, q := range f {
		longest = max(longest, len(q.segments))
	}
	for k := 1; k <= max(1, longest-len(prefix)+1); k++ {
		if !f.coversWildTail(prefix, k) {
			return false
		}
	}
	return true
}

// coversFixed reports whether one pattern of f matches every type segs
// (literals and '*', no '>') matches. With an unbounded alphabet a '*' can
// take a segment no pattern names, so a union of patterns covers a
// fixed-length pattern only when one of them does.
func (f Filter) coversFixed(segs []string) bool {
	for _, q := range f {
		if coversOne(q.segments, segs, 0) {
			return true
		}
	}
	return false
}

// coversWildTail is coversFixed for prefix followed by k '*' segments.
func (f Filter) coversWildTail(prefix []string, k int) bool {
	for _, q := range f {
		if coversOne(q.segments, prefix, k) {
			return true
		}
	}
	return false
}

// coversOne reports whether pattern q matches every type matched by segs
// followed by tail '*' segments (segs holds literals and '*').
func coversOne(q, segs []string, tail int) bool {
	n := len(segs) + tail
	for i, qs := range q {
		if qs == ">" {
			return i < n // one or more segments remain
		}
		if i >= n {
			return false
		}
		s := "*"
		if i < len(segs) {
			s = segs[i]
		}
		if qs != "*" && qs != s {
			return false
		}
	}
	return len(q) == n
}
