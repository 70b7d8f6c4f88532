package dispatch

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestBlockedAddrEmbeddedIPv4: an IPv6 address that carries an IPv4
// address is judged by that address, and says so.
func TestBlockedAddrEmbeddedIPv4(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // part of the reason; "" means allowed
	}{
		{"::127.0.0.1", "loopback address (127.0.0.1 carried in a IPv4-compatible"},
		{"::10.1.2.3", "private address (10.1.2.3"},
		{"::169.254.169.254", "link-local address"},
		{"::1", "loopback address"},
		{"::", "unspecified address"},
		{"::93.184.216.34", ""},
		{"::ffff:0:7f00:1", "loopback address (127.0.0.1 carried in a IPv4-translated"},
		{"::ffff:7f00:1", "loopback address"}, // IPv4-mapped
		{"64:ff9b::7f00:1", "loopback address (127.0.0.1 carried in a NAT64"},
		{"64:ff9b::c0a8:101", "private address (192.168.1.1"},
		{"64:ff9b::6440:1", "reserved address (100.64.0.1"},
		{"64:ff9b::5db8:d822", ""},
		{"64:ff9b:1::5db8:d822", "local-use NAT64"},
		{"64:ff9b:1:ffff::", "local-use NAT64"},
		{"64:ff9b:2::7f00:1", ""}, // outside both NAT64 prefixes: plain global IPv6
		{"2002:7f00:1::", "loopback address (127.0.0.1 carried in a 6to4"},
		{"2002:a9fe:a9fe::1", "link-local address (169.254.169.254"},
		{"2002:e000:1::", "multicast address (224.0.0.1"},
		{"2002:5db8:d822::", ""},
		{"2001:0:5db8:d822::80ff:fffe", "loopback address (127.0.0.1 carried in a Teredo client"},
		{"2001:0:5db8:d822::f5ff:fffe", "private address (10.0.0.1 carried in a Teredo client"},
		{"2001:0:7f00:1::a247:2ddd", "loopback address (127.0.0.1 carried in a Teredo server"},
		{"2001:0:5db8:d822::a247:2ddd", ""},
		{"2001:db9::7f00:1", ""}, // 2001:db9:: is not Teredo (2001:0::/32)
		{"::127.0.0.1%eth0", "loopback address"},
		{"64:ff9b::a00:1%1", "private address"},
		{"2606:4700::1111", ""},
	} {
		got := blockedAddr(netip.MustParseAddr(tc.addr))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("blockedAddr(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestGuardControlEmbeddedIPv4: the dial-time guard refuses the same
// addresses on the very address being dialled, so a DNS answer (DNS64, a
// rebinding server) that carries a private IPv4 address in IPv6 cannot
// slip past it.
func TestGuardControlEmbeddedIPv4(t *testing.T) {
	for _, addr := range []string{
		"[::127.0.0.1]:80", "[64:ff9b::7f00:1]:443", "[64:ff9b:1::1]:80",
		"[2002:7f00:1::]:80", "[2001:0:5db8:d822::80ff:fffe]:80", "[2001:0:5db8:d822::f5ff:fffe]:8080",
	} {
		if err := guardControl("tcp6", addr, nil); !errors.Is(err, ErrPrivateTarget) {
			t.Errorf("guardControl(%s) = %v, want ErrPrivateTarget", addr, err)
		}
	}
	for _, addr := range []string{"[64:ff9b::5db8:d822]:443", "[2002:5db8:d822::1]:80", "93.184.216.34:80"} {
		if err := guardControl("tcp", addr, nil); err != nil {
			t.Errorf("guardControl(%s) = %v, want nil", addr, err)
		}
	}
}
