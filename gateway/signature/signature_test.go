package signature_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// The Standard Webhooks published test vector: TestWebhookSign in
// github.com/standard-webhooks/standard-webhooks libraries/go/webhook_test.go,
// also "sign function works" in libraries/javascript/src/webhook.test.ts.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// otherSecret is bytes 0..31; vectors under it were computed independently
// with Python's hmac, hashlib and base64 modules.
const otherSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func mustParse(tb testing.TB, s string) signature.Secret {
	tb.Helper()
	sec, err := signature.ParseSecret(s)
	if err != nil {
		tb.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return sec
}

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		msgID  string
		unix   int64
		body   string
		want   string
	}{
		{"standard webhooks spec vector", specSecret, specMsgID, specTimestamp, specPayload, specSignature},
		{"32-byte key", otherSecret, specMsgID, specTimestamp, specPayload, "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI="},
		{"empty body, epoch", specSecret, "evt_01JDQ", 0, "", "v1,alZTq6QpV9r0lQxHh/rZ7S7asbrmjZrYm4rimB5x7/o="},
		{
			"gateway event, UTF-8", otherSecret, "01JDQ8X3Y0ZK2N5T7W9A", 1764115200,
			`{"seq":42,"id":"evt_1","type":"order.created","source":"/shop","time":"2026-11-26T10:00:00Z","data":{"total":"9.99€"}}`,
			"v1,+hYaVvh4FLvwgLK0dKYV0EVKUgrp1+pDeAjweHMg8cc=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.secret)
			// Sub-second parts are not signed.
			ts := time.Unix(tt.unix, 999_999_999)
			if got := signature.Sign(s, tt.msgID, ts, []byte(tt.body)); got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
			if got := string(signature.AppendSign([]byte("x "), s, tt.msgID, ts, []byte(tt.body))); got != "x "+tt.want {
				t.Errorf("AppendSign = %q, want %q", got, "x "+tt.want)
			}
			h := http.Header{}
			signature.SetHeaders(h, []signature.Secret{s}, tt.msgID, ts, []byte(tt.body))
			if err := signature.Verify([]signature.Secret{s}, h, []byte(tt.body), ts, 0); err != nil {
				t.Errorf("Verify of own headers: %v", err)
			}
		})
	}
}

// TestVerifySpecVector checks the published headers as a receiver gets them,
// with lower-case names as the spec writes them.
func TestVerifySpecVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", specMsgID)
	h.Set("webhook-timestamp", fmt.Sprint(specTimestamp))
	h.Set("webhook-signature", specSignature)
	secrets := []signature.Secret{mustParse(t, specSecret)}
	if err := signature.Verify(secrets, h, []byte(specPayload), time.Unix(specTimestamp, 0), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"spec secret, 24 bytes", specSecret, true},
		{"32 bytes", otherSecret, true},
		{"64 bytes", "whsec_" + strings.Repeat("A", 86) + "==", true},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"no prefix", strings.TrimPrefix(specSecret, "whsec_"), false},
		{"other prefix", "whsk_" + strings.TrimPrefix(specSecret, "whsec_"), false},
		{"upper-case prefix", "WHSEC_" + strings.TrimPrefix(specSecret, "whsec_"), false},
		{"23 bytes", "whsec_" + strings.Repeat("A", 31) + "=", false},
		{"65 bytes", "whsec_" + strings.Repeat("A", 87) + "=", false},
		{"not base64", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", false},
		{"url-safe alphabet", "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-_", false},
		{"missing padding", strings.TrimSuffix(otherSecret, "="), false},
		{"non-zero padding bits", strings.TrimSuffix(otherSecret, "8=") + "9=", false},
		{"embedded newline", "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", false},
		{"trailing space", specSecret + " ", false},
		{"huge", "whsec_" + strings.Repeat("A", 1<<20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := signature.ParseSecret(tt.in)
			if tt.ok && err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if !tt.ok && !errors.Is(err, signature.ErrInvalidSecret) {
				t.Fatalf("ParseSecret error = %v, want ErrInvalidSecret", err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := signature.NewSecret(), signature.NewSecret()
	if a == b {
		t.Fatal("two NewSecret calls returned the same secret")
	}
	for _, s := range []string{a, b} {
		// 32 bytes: 44 base64 characters after the prefix.
		if !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 {
			t.Errorf("NewSecret = %q, want whsec_ and 44 base64 characters", s)
		}
		mustParse(t, s)
	}
}

func TestSecretDoesNotPrint(t *testing.T) {
	s := mustParse(t, specSecret)
	key := strings.TrimPrefix(specSecret, "whsec_")
	type holder struct{ S signature.Secret }
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{s, &s, holder{s}, []signature.Secret{s}} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, key) || strings.Contains(out, "MfKQ") {
				t.Errorf("Sprintf(%q, %T) = %q reveals the key", format, v, out)
			}
		}
	}
	if got := s.String(); got != "whsec_[redacted]" {
		t.Errorf("String = %q", got)
	}
}

func TestHeaderRotation(t *testing.T) {
	oldS, newS := mustParse(t, specSecret), mustParse(t, otherSecret)
	ts := time.Unix(specTimestamp, 0)
	body := []byte(specPayload)

	got := signature.Header([]signature.Secret{newS, oldS}, specMsgID, ts, body)
	want := signature.Sign(newS, specMsgID, ts, body) + " " + specSignature
	if got != want {
		t.Fatalf("Header = %q, want %q", got, want)
	}
	if got := signature.Header(nil, specMsgID, ts, body); got != "" {
		t.Errorf("Header with no secrets = %q, want empty", got)
	}
	three := signature.Header([]signature.Secret{newS, oldS, newS}, specMsgID, ts, body)
	if n := len(strings.Split(three, " ")); n != 3 {
		t.Errorf("Header with three secrets has %d signatures: %q", n, three)
	}
}

func TestZeroSecret(t *testing.T) {
	var zero signature.Secret
	ts := time.Unix(specTimestamp, 0)
	body := []byte(specPayload)
	sig := signature.Sign(zero, specMsgID, ts, body) // must not panic
	h := http.Header{}
	h.Set(signature.HeaderID, specMsgID)
	h.Set(signature.HeaderTimestamp, fmt.Sprint(specTimestamp))
	h.Set(signature.HeaderSignature, sig)
	err := signature.Verify([]signature.Secret{zero}, h, body, ts, 0)
	if !errors.Is(err, signature.ErrNoMatchingSignature) {
		t.Fatalf("Verify with the zero Secret = %v, want ErrNoMatchingSignature", err)
	}
}

func TestSignAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	s := mustParse(t, otherSecret)
	ts := time.Unix(specTimestamp, 0)
	body := []byte(specPayload)
	buf := make([]byte, 0, 64)
	signature.Sign(s, specMsgID, ts, body) // warm the pool
	if n := testing.AllocsPerRun(100, func() { signature.AppendSign(buf[:0], s, specMsgID, ts, body) }); n != 0 {
		t.Errorf("AppendSign allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { signature.Sign(s, specMsgID, ts, body) }); n > 1 {
		t.Errorf("Sign allocates %v times per call, want at most 1", n)
	}
}

func BenchmarkSign(b *testing.B) {
	s := mustParse(b, otherSecret)
	ts := time.Unix(specTimestamp, 0)
	for _, size := range []int{64, 1 << 10, 16 << 10} {
		body := []byte(strings.Repeat("x", size))
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				signature.Sign(s, specMsgID, ts, body)
			}
		})
	}
	b.Run("AppendSign/body=1024", func(b *testing.B) {
		body := []byte(strings.Repeat("x", 1<<10))
		buf := make([]byte, 0, 64)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			buf = signature.AppendSign(buf[:0], s, specMsgID, ts, body)
		}
	})
	b.Run("Header/rotation/body=1024", func(b *testing.B) {
		body := []byte(strings.Repeat("x", 1<<10))
		secrets := []signature.Secret{s, mustParse(b, specSecret)}
		b.ReportAllocs()
		for b.Loop() {
			signature.Header(secrets, specMsgID, ts, body)
		}
	})
}
