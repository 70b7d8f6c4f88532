package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// hostGuard decides which Host headers the gateway answers, against DNS
// rebinding: a page on rebind.attacker.example whose name comes to resolve
// to 127.0.0.1 reaches a loopback gateway with that name as its Host, and
// the browser treats the answers as the attacker's own origin.
//
// Loopback host names (localhost, any loopback IP, with any port, in any
// case, with or without a trailing dot) are always accepted: no page can
// have them as its origin but a local one. Beyond them, allowed lists the
// accepted names; with none, a gateway listening on loopback accepts
// nothing else, and one listening elsewhere accepts any Host.
type hostGuard struct {
	loopbackOnly bool
	allowed      map[string]bool
}

func newHostGuard(addr string, allowed []string) hostGuard {
	g := hostGuard{loopbackOnly: listensOnLoopback(addr), allowed: map[string]bool{}}
	for _, h := range allowed {
		if h = hostName(h); h != "" {
			g.allowed[h] = true
		}
	}
	return g
}

// listensOnLoopback reports whether addr (an --addr value) binds loopback
// only. Empty means unknown, and so not loopback.
func listensOnLoopback(addr string) bool {
	if addr == "" {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return isLoopbackName(hostName(host))
}

// hostName normalizes a Host header or a configured name: the port and the
// brackets of an IPv6 literal removed, lower case, no trailing dot.
func hostName(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// accepts reports whether the gateway answers requests for host (r.Host).
func (g hostGuard) accepts(host string) bool {
	h := hostName(host)
	switch {
	case h == "":
		return false
	case isLoopbackName(h), g.allowed[h]:
		return true
	}
	return !g.loopbackOnly && len(g.allowed) == 0
}

// check is middleware answering 421 Misdirected Request, with a problem
// document, to requests for a Host the gateway does not answer for.
func (g hostGuard) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.accepts(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		shown := r.Host
		if len(shown) > 100 {
			shown = shown[:100] + "…"
		}
		fail(w, http.StatusMisdirectedRequest, fmt.Sprintf(
			"this gateway does not answer for the host %q: it accepts localhost, loopback addresses and the names in --allowed-hosts", shown))
	})
}
