package dispatch_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/store"
)

func TestCheckURL(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "public.test":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "mixed.test": // one private answer is enough to refuse
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.7")}, nil
		case "nat64.test": // a DNS64 answer for 127.0.0.1
			return []netip.Addr{netip.MustParseAddr("64:ff9b::7f00:1")}, nil
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		}
		return nil, errors.New("no such host")
	}
	d := dispatch.New(gateway.NewPublisher(store.NewRing(1)), dispatch.Config{Lookup: lookup})
	for _, tc := range []struct {
		url     string
		private bool // refused by the SSRF guard
		bad     bool // refused as not an absolute http(s) URL
	}{
		{url: "https://93.184.216.34/hook"},
		{url: "https://public.test/hook"},
		{url: "https://unresolvable.test/hook"}, // the dial-time guard decides
		{url: "http://[2606:4700::1111]/"},
		{url: "http://127.0.0.1/", private: true},
		{url: "http://127.8.9.10:8080/", private: true},
		{url: "http://10.0.0.1/", private: true},
		{url: "http://172.31.255.255/", private: true},
		{url: "http://192.168.1.1/", private: true},
		{url: "http://169.254.169.254/latest/meta-data/", private: true},
		{url: "http://100.64.0.1/", private: true},
		{url: "http://0.0.0.0/", private: true},
		{url: "http://224.0.0.1/", private: true},
		{url: "http://[::1]/", private: true},
		{url: "http://[::]/", private: true},
		{url: "http://[fc00::1]/", private: true},
		{url: "http://[fe80::1]/", private: true},
		{url: "http://[::ffff:10.0.0.1]/", private: true},
		{url: "https://mixed.test/", private: true},
		// IPv4 carried inside IPv6 is judged by the IPv4 address.
		{url: "http://[::127.0.0.1]/", private: true},
		{url: "http://[::10.0.0.1]:8080/", private: true},
		{url: "http://[::ffff:0:127.0.0.1]/", private: true},
		{url: "http://[64:ff9b::7f00:1]/", private: true},
		{url: "http://[64:ff9b::169.254.169.254]/", private: true},
		{url: "http://[64:ff9b:1::5db8:d822]/", private: true}, // local-use NAT64: refused whole
		{url: "http://[2002:7f00:1::]/", private: true},
		{url: "http://[2002:a00:1:1::1]/", private: true},
		{url: "http://[2001:0:5db8:d822::80ff:fffe]/", private: true}, // Teredo client 127.0.0.1
		{url: "http://[2001:0:5db8:d822::f5ff:fffe]/", private: true}, // Teredo client 10.0.0.1
		{url: "http://[2001:0:a00:1::a247:2ddd]/", private: true},     // Teredo server 10.0.0.1
		{url: "http://[::127.0.0.1%25eth0]/", private: true},
		{url: "https://nat64.test/", private: true},
		{url: "http://[64:ff9b::5db8:d822]/"},          // NAT64 of 93.184.216.34
		{url: "http://[2002:5db8:d822::1]/"},           // 6to4 of 93.184.216.34
		{url: "http://[2001:0:5db8:d822::a247:2ddd]/"}, // Teredo: server and client public
		// Ports outside 1-65535.
		{url: "http://public.test:0/", bad: true},
		{url: "http://public.test:65536/", bad: true},
		{url: "http://public.test:99999/", bad: true},
		{url: "http://[2606:4700::1111]:65535/"},
		{url: "http://public.test:1/"},
		{url: "https://metadata.test/", private: true},
		{url: "ftp://public.test/", bad: true},
		{url: "http:///nohost", bad: true},
		{url: "public.test/hook", bad: true},
	} {
		err := d.CheckURL(context.Background(), tc.url)
		var te *dispatch.TargetError
		switch {
		case tc.private && !errors.Is(err, dispatch.ErrPrivateTarget):
			t.Errorf("%s: %v, want ErrPrivateTarget", tc.url, err)
		case tc.bad && (!errors.As(err, &te) || errors.Is(err, dispatch.ErrPrivateTarget)):
			t.Errorf("%s: %v, want a bad-URL TargetError", tc.url, err)
		case !tc.private && !tc.bad && err != nil:
			t.Errorf("%s: %v, want accepted", tc.url, err)
		}
	}
}
