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
