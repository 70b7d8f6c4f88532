package api

import (
	"strings"
	"unicode/utf8"
)

// decodeCEHeader reads a ce-* header value as senders write them, not only
// as the CloudEvents HTTP binding says they should. The binding has
// encoders percent-encode space, '"', '%' and every byte outside printable
// ASCII; the official SDKs (sdk-go, npm cloudevents) send values as they
// are. So, liberally:
//
//   - a value that is not valid UTF-8 is read as ISO-8859-1 (what header
//     bytes historically mean: Node's fetch sends "ü" as the byte 0xFC);
//   - %XX is decoded only where a conforming encoder would have written it:
//     for space, '"', '%' and control characters, and for runs of bytes
//     from 0x80 that form valid UTF-8 ("%C3%BC" is "ü");
//   - anything else stays as it was: "50% off", "a%41b", "%E2%82" (half a
//     character) are stored literally.
//
// The result is always valid UTF-8 and holds U+FFFD only where the sender
// sent it.
func decodeCEHeader(raw string) string {
	if !utf8.ValidString(raw) {
		raw = latin1(raw)
	}
	if !strings.Contains(raw, "%") {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c, ok := pctByte(raw, i)
		switch {
		case !ok:
			b.WriteByte(raw[i])
			i++
		case c < utf8.RuneSelf:
			if mustEncode(c) {
				b.WriteByte(c)
			} else {
				b.WriteString(raw[i : i+3])
			}
			i += 3
		default:
			// A run of encoded bytes from 0x80: decoded only if they are
			// whole UTF-8 characters.
			j, run := i, make([]byte, 0, 4)
			for {
				c, ok := pctByte(raw, j)
				if !ok || c < utf8.RuneSelf {
					break
				}
				run = append(run, c)
				j += 3
			}
			if utf8.Valid(run) && !strings.ContainsRune(string(run), utf8.RuneError) {
				b.Write(run)
			} else {
				b.WriteString(raw[i:j])
			}
			i = j
		}
	}
	return b.String()
}

// pctByte returns the byte %XX at s[i:], if s[i:] starts with one.
func pctByte(s string, i int) (byte, bool) {
	if i+2 >= len(s) || s[i] != '%' {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// mustEncode reports whether the CloudEvents HTTP binding has encoders
// percent-encode the ASCII byte c.
func mustEncode(c byte) bool {
	return c < 0x20 || c == ' ' || c == '"' || c == '%' || c == 0x7f
}

// latin1 reads s's bytes as ISO-8859-1 characters.
func latin1(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
