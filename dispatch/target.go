package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
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

// blockedAddr names why a is refused without --allow-private-targets, or
// returns "" when it may be reached: loopback, private (RFC 1918, RFC
// 4193), link-local (incl. 169.254.169.254, the cloud metadata address),
// unspecified and multicast addresses are refused, also when written as
// IPv4-mapped IPv6.
func blockedAddr(a netip.Addr) string {
	a = a.Unmap()
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
