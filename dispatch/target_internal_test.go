package dispatch

import (
	"errors"
	"fmt"
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

// FuzzEmbeddedIPv4 checks blockedAddr on any IPv6 address against a naive
// reference that reads the address as 32 hex digits: where an IPv4
// address is carried, the verdict is the carried address's (or the
// address's own, when that is refused already).
func FuzzEmbeddedIPv4(f *testing.F) {
	for _, s := range []string{"::127.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::1", "2002:7f00:1::", "2001:0:5db8:d822::80ff:fffe", "2606:4700::1111", "::ffff:0:a00:1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(b))
		hex := fmt.Sprintf("%032x", b)
		v4 := func(h string) netip.Addr { // 8 hex digits
			var x [4]byte
			for i := range x {
				fmt.Sscanf(h[2*i:2*i+2], "%02x", &x[i])
			}
			return netip.AddrFrom4(x)
		}
		var carried []netip.Addr
		local := false
		switch {
		case strings.HasPrefix(hex, strings.Repeat("0", 20)+"ffff"): // IPv4-mapped
			carried = []netip.Addr{v4(hex[24:])}
		case strings.HasPrefix(hex, strings.Repeat("0", 24)):
			carried = []netip.Addr{v4(hex[24:])}
		case strings.HasPrefix(hex, strings.Repeat("0", 16)+"ffff0000"):
			carried = []netip.Addr{v4(hex[24:])}
		case strings.HasPrefix(hex, "0064ff9b"+strings.Repeat("0", 16)):
			carried = []netip.Addr{v4(hex[24:])}
		case strings.HasPrefix(hex, "0064ff9b0001"):
			local = true
		case strings.HasPrefix(hex, "2002"):
			carried = []netip.Addr{v4(hex[4:12])}
		case strings.HasPrefix(hex, "20010000"):
			var inv [8]byte
			for i, c := range hex[24:] {
				var n int
				fmt.Sscanf(string(c), "%x", &n)
				inv[i] = "0123456789abcdef"[15-n]
			}
			carried = []netip.Addr{v4(hex[8:16]), v4(string(inv[:]))}
		}
		got := blockedAddr(a)
		want := blockedPlain(a.Unmap()) != "" || local
		for _, c := range carried {
			want = want || blockedPlain(c) != ""
		}
		if (got != "") != want {
			t.Fatalf("blockedAddr(%s) = %q, reference says blocked=%v (carried %v)", a, got, want, carried)
		}
	})
}
