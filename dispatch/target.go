package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrPrivateTarget is wrapped by the errors of the SSRF guard: a webhook
// URL whose host is, or resolves to, an address the gateway may not reach
// without --allow-private-targets.
var ErrPrivateTarget = errors.New("private target refused")

// TargetError says why a webhook URL was refused at registration.
type TargetError struct {
	URL    string
	Reason string
	Err    error // ErrPrivateTarget, or the URL's parse error
}

func (e *TargetError) Error() string { return e.Reason }

// Unwrap returns the cause.
func (e *TargetError) Unwrap() error { return e.Err }

// extraBlocked are ranges refused besides what netip's predicates name:
// "this network" (0.0.0.0/8, RFC 1122) and shared address space (RFC 6598,
// carrier-grade NAT, often routed to internal infrastructure).
var extraBlocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

// localNAT64 is the local-use NAT64 prefix (RFC 8215). Where its IPv4
// address sits depends on the prefix length each network picks (RFC 6052:
// /48 puts it in bits 48-87, skipping the u octet), so it cannot be read
// reliably: the whole prefix is refused.
var localNAT64 = netip.MustParsePrefix("64:ff9b:1::/48")

// blockedAddr names why a is refused without --allow-private-targets, or
// returns "" when it may be reached: loopback, private (RFC 1918, RFC
// 4193), link-local (incl. 169.254.169.254, the cloud metadata address),
// unspecified and multicast addresses are refused, also when written as
// IPv4-mapped IPv6. An IPv6 address that carries an IPv4 address (see
// embeddedIPv4) is judged by that address too, and the local-use NAT64
// prefix 64:ff9b:1::/48 is refused whole. A zone is ignored.
func blockedAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("") // a zone would make every Prefix.Contains false
	if why := blockedPlain(a); why != "" {
		return why
	}
	if localNAT64.Contains(a) {
		return "local-use NAT64 address (64:ff9b:1::/48, RFC 8215)"
	}
	for _, e := range embeddedIPv4(a) {
		if why := blockedPlain(e.v4); why != "" {
			return fmt.Sprintf("%s (%s carried in a %s address)", why, e.v4, e.kind)
		}
	}
	return ""
}

// blockedPlain is blockedAddr's verdict on a itself.
func blockedPlain(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "invalid address"
	case a.IsLoopback():
		return "loopback address"
	case a.IsPrivate():
		return "private address"
	case a.IsLinkLocalUnicast():
		return "link-local address"
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast address"
	}
	for _, p := range extraBlocked {
		if p.Contains(a) {
			return "reserved address"
		}
	}
	return ""
}

// IPv6 ranges whose addresses carry an IPv4 address that traffic may end
// up at (through a translator, a tunnel or the host's own stack).
var (
	v4Compatible = netip.MustParsePrefix("::/96")           // IPv4-compatible (RFC 4291, deprecated)
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (SIIT, RFC 2765)
	nat64        = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64 prefix (RFC 6052)
	sixToFour    = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056)
	teredo       = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380)
)

// carried is an IPv4 address found inside an IPv6 address.
type carried struct {
	v4   netip.Addr
	kind string
}

// embeddedIPv4 returns the IPv4 addresses the IPv6 address a carries:
// the last 32 bits of an IPv4-compatible, IPv4-translated or NAT64
// (64:ff9b::/96) address, bits 16-47 of a 6to4 address, and for Teredo
// both the server (bits 32-63) and the client (the last 32 bits, inverted).
// IPv4-mapped addresses are Unmapped by the caller. Nil for anything else.
func embeddedIPv4(a netip.Addr) []carried {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case v4Compatible.Contains(a):
		return []carried{{last, "IPv4-compatible (::/96)"}}
	case v4Translated.Contains(a):
		return []carried{{last, "IPv4-translated (::ffff:0:0:0/96)"}}
	case nat64.Contains(a):
		return []carried{{last, "NAT64 (64:ff9b::/96)"}}
	case sixToFour.Contains(a):
		return []carried{{netip.AddrFrom4([4]byte(b[2:6])), "6to4 (2002::/16)"}}
	case teredo.Contains(a):
		client := [4]byte{b[12] ^ 0xff, b[13] ^ 0xff, b[14] ^ 0xff, b[15] ^ 0xff}
		return []carried{
			{netip.AddrFrom4([4]byte(b[4:8])), "Teredo server (2001::/32)"},
			{netip.AddrFrom4(client), "Teredo client (2001::/32)"},
		}
	}
	return nil
}

// guardControl is a net.Dialer Control function that refuses to connect to
// a blocked address. It runs after name resolution, on the very address
// being dialled, so DNS rebinding cannot slip past it.
func guardControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrPrivateTarget, address)
	}
	if why := blockedAddr(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is a %s (--allow-private-targets is off)", ErrPrivateTarget, ap.Addr(), why)
	}
	return nil
}

// LookupFunc resolves a host name to addresses, like
// (*net.Resolver).LookupNetIP with network "ip".
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// checkURL refuses a webhook URL that is not absolute http(s), or, when
// private targets are not allowed, whose host is or resolves to a blocked
// address. A host that does not resolve now is accepted: the dial-time
// guard checks it again on every connection.
func checkURL(ctx context.Context, raw string, allowPrivate bool, lookup LookupFunc) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &TargetError{URL: raw, Reason: "not a valid URL", Err: err}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return &TargetError{URL: raw, Reason: "must be an absolute http or https URL", Err: errors.New("bad scheme or host")}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &TargetError{URL: raw, Reason: fmt.Sprintf("port %s is outside 1-65535", p), Err: errors.New("bad port")}
		}
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if why := blockedAddr(a); why != "" {
			return &TargetError{URL: raw, Reason: fmt.Sprintf("host %s is a %s; the gateway refuses private targets (--allow-private-targets is off)", host, why), Err: ErrPrivateTarget}
		}
		return nil
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil //nolint:nilerr // unresolvable now; the dial-time guard decides on every connection
	}
	for _, a := range addrs {
		if why := blockedAddr(a); why != "" {
			return &TargetError{URL: raw, Reason: fmt.Sprintf("host %s resolves to %s, a %s; the gateway refuses private targets (--allow-private-targets is off)", host, a.Unmap(), why), Err: ErrPrivateTarget}
		}
	}
	return nil
}
