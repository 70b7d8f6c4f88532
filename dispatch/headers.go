package dispatch

import (
	"fmt"
	"net/http"
	"strings"
)

// Limits on a webhook's custom headers.
const (
	MaxHeaders        = 20      // headers per webhook
	MaxHeaderName     = 256     // bytes of one name
	MaxHeaderValue    = 4 << 10 // bytes of one value
	MaxHeadersTotal   = 8 << 10 // bytes of all names and values together
	maxHeaderCountMsg = "at most 20 headers"
)

// reservedHeaders are the names a webhook may not set: those the gateway
// sets itself, Host, and hop-by-hop headers (RFC 9110 §7.6.1), in
// canonical form.
var reservedHeaders = map[string]string{
	"Webhook-Id":             "is set by the gateway",
	"Webhook-Timestamp":      "is set by the gateway",
	"Webhook-Signature":      "is set by the gateway",
	"Content-Type":           "is set by the gateway",
	"Content-Length":         "is set by the gateway",
	"User-Agent":             "is set by the gateway",
	"Host":                   "is taken from the URL",
	"Connection":             "is a hop-by-hop header",
	"Keep-Alive":             "is a hop-by-hop header",
	"Proxy-Authenticate":     "is a hop-by-hop header",
	"Proxy-Authorization":    "is a hop-by-hop header",
	"Proxy-Connection":       "is a hop-by-hop header",
	"Te":                     "is a hop-by-hop header",
	"Trailer":                "is a hop-by-hop header",
	"Transfer-Encoding":      "is a hop-by-hop header",
	"Upgrade":                "is a hop-by-hop header",
	"Webhook-Request-Origin": "is set by the gateway (handshake)",
	"Webhook-Request-Rate":   "is set by the gateway (handshake)",
}

// HeaderError says why one custom header is refused. Name is the header
// name as given, or "" for a fault of the whole set (too many, too large).
type HeaderError struct {
	Name   string
	Reason string
}

func (e *HeaderError) Error() string {
	if e.Name == "" {
		return "headers: " + e.Reason
	}
	return fmt.Sprintf("header %q %s", e.Name, e.Reason)
}

// CheckHeaders reports every reason the custom headers h are refused: more
// than MaxHeaders, over MaxHeadersTotal bytes, a name that is not an HTTP
// token or is reserved (set by the gateway, Host, hop-by-hop), two names
// equal but for case, a name over MaxHeaderName or a value over
// MaxHeaderValue bytes, or a value that is not an RFC 9110 field-value
// (see checkValue). Nil means fine.
func CheckHeaders(h map[string]string) []*HeaderError {
	var errs []*HeaderError
	if len(h) > MaxHeaders {
		errs = append(errs, &HeaderError{Reason: maxHeaderCountMsg})
	}
	total := 0
	seen := make(map[string]string, len(h))
	for name, value := range h {
		total += len(name) + len(value)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case name == "" || len(name) > MaxHeaderName || !isToken(name):
			errs = append(errs, &HeaderError{name, fmt.Sprintf("is not a valid header name (an HTTP token of 1 to %d characters)", MaxHeaderName)})
		case reservedHeaders[canon] != "":
			errs = append(errs, &HeaderError{name, reservedHeaders[canon]})
		case seen[canon] != "":
			errs = append(errs, &HeaderError{name, fmt.Sprintf("repeats %q (names are case-insensitive)", seen[canon])})
		case len(value) > MaxHeaderValue:
			errs = append(errs, &HeaderError{name, fmt.Sprintf("has a value over %d bytes", MaxHeaderValue)})
		default:
			if why := checkValue(value); why != "" {
				errs = append(errs, &HeaderError{name, why})
			}
		}
		if seen[canon] == "" {
			seen[canon] = name
		}
	}
	if total > MaxHeadersTotal {
		errs = append(errs, &HeaderError{Reason: fmt.Sprintf("names and values add up to %d bytes, over %d", total, MaxHeadersTotal)})
	}
	return errs
}

// checkValue says why v is not an RFC 9110 field-value, or returns "":
// visible ASCII, obs-text (bytes 0x80-0xFF, so any UTF-8), spaces and
// horizontal tabs, with no space or tab first or last. Any other control
// character (CR, LF, NUL, VT, DEL, ...) is refused: Go's HTTP client would
// refuse every request carrying it, so each delivery would fail.
func checkValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Sprintf("has a value holding the control character %U at byte %d (only visible characters, spaces and tabs may appear, RFC 9110)", rune(c), i)
		}
	}
	if v != strings.Trim(v, " \t") {
		return "has a value that starts or ends with a space or tab (RFC 9110)"
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
