package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Origins is a parsed --cors-origins list: the web origins whose pages may
// call the gateway from the browser. The zero value and nil allow none. It
// is immutable, so safe for concurrent use.
//
// An entry is scheme://host[:port], exactly as a browser writes an Origin
// header: no path (not even "/"), query, fragment or user. Scheme and host
// are case-insensitive; a default port (80 for http, 443 for https) may be
// written or left out. Only the same scheme and port match: https://a.test
// does not allow http://a.test nor https://a.test:8443.
//
// A host may start with a single wildcard label: https://*.example.com
// allows https://a.example.com and https://a.b.example.com (one label or
// more in place of the '*'), but not https://example.com itself (list it
// too) nor https://example.com.evil.test. The wildcard must stand for a
// whole label, before at least two labels (*.com is refused) and never
// before an IP address.
//
// "*" (any origin) is refused: with API keys in browsers, any page on the
// web could then drive the gateway with a key a user pasted; list the
// origins instead. "null" (the origin of sandboxed frames and file: pages,
// which any page can create) is refused too.
type Origins struct {
	exact map[string]bool // serialized origins: "https://app.example.com"
	wild  []origin        // host is the suffix after "*."
}

// ParseOrigins parses a --cors-origins list. The error names every
// malformed entry and why; blank entries are skipped.
func ParseOrigins(list []string) (*Origins, error) {
	o := &Origins{exact: map[string]bool{}}
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parseOrigin(s, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", s, err))
			continue
		}
		if p.wild {
			o.wild = append(o.wild, p)
		} else {
			o.exact[p.String()] = true
		}
	}
	if errs != nil {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// Len is the number of origins listed.
func (o *Origins) Len() int {
	if o == nil {
		return 0
	}
	return len(o.exact) + len(o.wild)
}

// Allows reports whether a request whose Origin header is origin comes
// from a listed origin. A malformed origin, and "null", are never allowed.
func (o *Origins) Allows(origin string) bool {
	if o.Len() == 0 {
		return false
	}
	p, err := parseOrigin(origin, false)
	if err != nil {
		return false
	}
	return o.allows(p)
}

func (o *Origins) allows(p origin) bool {
	if o.exact[p.String()] {
		return true
	}
	for _, w := range o.wild {
		// p.host is a valid host name, so whatever precedes ".suffix" is
		// one label or more.
		if p.scheme == w.scheme && p.port == w.port && strings.HasSuffix(p.host, "."+w.host) {
			return true
		}
	}
	return false
}

// origin is a parsed web origin: lower-case scheme and host, the port in
// decimal or "" for the scheme's default. An IPv6 host keeps its brackets.
type origin struct {
	scheme, host, port string
	wild               bool // a pattern whose host follows "*."
}

func (p origin) String() string {
	s := p.scheme + "://"
	if p.wild {
		s += "*."
	}
	s += p.host
	if p.port != "" {
		s += ":" + p.port
	}
	return s
}

// defaultPorts are the ports an origin leaves out.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// parseOrigin parses an origin as browsers serialize it. A pattern (a
// --cors-origins entry) may start its host with "*." and may not end it
// with a dot; an Origin header may have a trailing dot (a distinct origin
// to browsers), never a wildcard.
func parseOrigin(s string, pattern bool) (origin, error) {
	var p origin
	switch s {
	case "*":
		return p, errors.New("any origin (*) is refused: any web page could then use the API keys its visitors type in; list the origins that may call the gateway")
	case "null":
		return p, errors.New(`"null" is refused: it is the origin of sandboxed frames and file: pages, which any page can make`)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return p, errors.New("want scheme://host[:port], such as https://app.example.com")
	}
	p.scheme = strings.ToLower(scheme)
	if i := strings.IndexAny(rest, "/?#@\\"); i >= 0 {
		if rest[i:] == "/" {
			return p, fmt.Errorf("an origin has no path, not even /: write %s://%s", p.scheme, rest[:i])
		}
		return p, errors.New("an origin is scheme://host[:port], with no path, query, fragment or user")
	}
	host := rest
	if strings.HasPrefix(rest, "[") { // an IPv6 literal
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return p, errors.New("an IPv6 address needs its closing ]")
		}
		ip, err := netip.ParseAddr(rest[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return p, fmt.Errorf("%q is not an IPv6 address", rest[1:end])
		}
		host, rest = "["+ip.String()+"]", rest[end+1:]
		if rest != "" && rest[0] != ':' {
			return p, errors.New("want [ipv6]:port")
		}
		if rest != "" {
			p.port = rest[1:]
			if p.port == "" {
				return p, errors.New("the port after : is missing")
			}
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, p.port = rest[:i], rest[i+1:]
		if p.port == "" {
			return p, errors.New("the port after : is missing")
		}
	}
	if p.port != "" {
		n, err := strconv.Atoi(p.port)
		if err != nil || n < 1 || n > 65535 || p.port[0] == '+' || p.port[0] == '0' {
			return p, fmt.Errorf("port %q is not a number from 1 to 65535 (without leading zeros)", p.port)
		}
		p.port = strconv.Itoa(n)
		if defaultPorts[p.scheme] == p.port {
			p.port = ""
		}
	}
	if strings.HasPrefix(host, "[") {
		p.host = host
		return p, nil
	}
	host = strings.ToLower(host)
	if pattern && strings.HasPrefix(host, "*.") {
		p.wild, host = true, host[2:]
	}
	if err := checkHostName(host, pattern); err != nil {
		return p, err
	}
	if p.wild {
		if _, err := netip.ParseAddr(host); err == nil {
			return p, errors.New("a wildcard cannot stand before an IP address")
		}
		if !strings.Contains(host, ".") {
			return p, fmt.Errorf("*.%s would allow every site under .%s: name a domain of two labels or more", host, host)
		}
	}
	p.host = host
	return p, nil
}

// validScheme reports whether s is a URI scheme (RFC 3986 §3.1).
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// checkHostName checks a lower-case host name (or IPv4 address): dot-
// separated labels of 1 to 63 letters, digits, '-' and '_', 253 bytes at
// most. A pattern may not end with a dot; an Origin header may.
func checkHostName(h string, pattern bool) error {
	if !pattern {
		h = strings.TrimSuffix(h, ".")
	}
	if h == "" {
		return errors.New("the host is missing")
	}
	if len(h) > 253 {
		return errors.New("the host is longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name: each dot-separated label has 1 to 63 characters", h)
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case c == '*':
				return errors.New("a wildcard is only a whole first label, as in https://*.example.com")
			case c >= 0x80:
				return errors.New("write an international host name in punycode (xn--…), as browsers send it")
			case !isLetter(c) && !isDigit(c) && c != '-' && c != '_':
				return fmt.Errorf("%q is not a host name: character %q", h, c)
			}
		}
	}
	return nil
}

// sameOrigin reports whether p names the host and port the request was
// sent to (its Host header), as the dashboard's own requests do. The
// scheme is not compared: TLS often ends at a proxy in front of the
// gateway, which then sees http while the page is https. (coder/websocket
// compares the same way.)
func sameOrigin(p origin, host string) bool {
	h, err := parseOrigin(p.scheme+"://"+host, false)
	return err == nil && h.port == p.port && strings.TrimSuffix(h.host, ".") == strings.TrimSuffix(p.host, ".")
}

// CORS answers. Preflights may be cached for Chromium's maximum, 2 hours.
const (
	corsMaxAge = "7200"
	// corsExposed are the answer headers, beyond the CORS-safelisted
	// ones, that scripts may read.
	corsExposed = "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, WWW-Authenticate, Allow"
)

// corsMethods are the methods a preflight may be granted, where the route
// has them.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete}

// corsHeaders are the request headers a cross-origin page may send,
// besides the CloudEvents binary mode's ce-* headers.
var corsHeaders = map[string]bool{"authorization": true, "content-type": true, "last-event-id": true}

// originCheckedKey marks, in a request's context, that checkOrigin found
// its Origin absent, the gateway's own or listed.
type originCheckedKey struct{}

// originChecked reports whether checkOrigin passed r, so that
// websocket.Accept need not check the origin again (it would refuse a
// listed origin with a text/plain 403).
func originChecked(r *http.Request) bool {
	ok, _ := r.Context().Value(originCheckedKey{}).(bool)
	return ok
}

// checkOrigin is middleware for browsers' cross-origin requests, before
// routing and authentication:
//
//   - no Origin header (curl, servers), or the gateway's own origin (the
//     dashboard): passed on unchanged;
//   - a listed origin (see Origins): passed on with
//     Access-Control-Allow-Origin naming it, Vary: Origin and
//     Access-Control-Expose-Headers; a preflight (OPTIONS with
//     Access-Control-Request-Method) is answered 204 here, without
//     credentials, with the methods routes has for the path, the
//     requested headers among Authorization, Content-Type, Last-Event-ID
//     and ce-*, and a max-age;
//   - any other origin, "null" and a malformed one: 403 with an
//     origin-not-allowed problem, WebSocket upgrades included.
//
// Credentials (cookies) are never allowed: the gateway reads none, and a
// key goes in Authorization or access_token. routes may be nil: then a
// preflight is granted every method in corsMethods.
func checkOrigin(origins *Origins, routes chi.Routes) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if origins.Len() > 0 {
				w.Header().Add("Vary", "Origin") // the answer differs by Origin
			}
			vals := r.Header.Values("Origin")
			if len(vals) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			p, err := parseOrigin(vals[0], false)
			switch {
			case err != nil || len(vals) > 1:
				refuseOrigin(w, vals[0])
				return
			case sameOrigin(p, r.Host):
			case origins.allows(p):
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", vals[0])
				if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
					preflight(w, r, routes)
					return
				}
				h.Set("Access-Control-Expose-Headers", corsExposed)
			default:
				refuseOrigin(w, vals[0])
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), originCheckedKey{}, true)))
		})
	}
}

// preflight answers a CORS preflight from a listed origin: 204, whatever
// the path, so that the real request gets the real answer (404, 405 or
// 401 with the CORS headers a script can read).
func preflight(w http.ResponseWriter, r *http.Request, routes chi.Routes) {
	h := w.Header()
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	var methods []string
	for _, m := range corsMethods {
		if routes == nil || routes.Find(chi.NewRouteContext(), m, r.URL.Path) != "" {
			methods = append(methods, m)
		}
	}
	if methods != nil {
		h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	}
	var allowed []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if corsHeaders[name] || isCEHeader(name) {
				allowed = append(allowed, name)
			}
		}
	}
	if allowed != nil {
		h.Set("Access-Control-Allow-Headers", strings.Join(allowed, ", "))
	}
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}

// isCEHeader reports whether name (lower case) is a CloudEvents binary-mode
// attribute header: ce- and an attribute name, lower-case letters and digits.
func isCEHeader(name string) bool {
	attr, ok := strings.CutPrefix(name, "ce-")
	if !ok || attr == "" {
		return false
	}
	for i := 0; i < len(attr); i++ {
		if !isDigit(attr[i]) && ('a' > attr[i] || attr[i] > 'z') {
			return false
		}
	}
	return true
}

// refuseOrigin answers 403 with an origin-not-allowed problem.
func refuseOrigin(w http.ResponseWriter, origin string) {
	if len(origin) > 100 {
		origin = origin[:100] + "…"
	}
	p := newProblem(http.StatusForbidden, fmt.Sprintf(
		"pages from the origin %q may not call this gateway: it accepts its own origin and those in --cors-origins", origin))
	p.Type, p.Title = problemBase+originNotAllowed[0], originNotAllowed[1]
	writeProblem(w, p)
}
