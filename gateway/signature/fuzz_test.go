package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// naiveVerify is the reference for Verify: the spec read literally, with
// crypto/hmac used directly and big integers for the clock.
func naiveVerify(keys [][]byte, id, ts, sigs string, body []byte, now time.Time, tol time.Duration) error {
	if id == "" || ts == "" || sigs == "" {
		return signature.ErrMissingHeaders
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != ts {
		return signature.ErrInvalidTimestamp
	}
	// age = now - ts, in nanoseconds.
	age := new(big.Int).Sub(big.NewInt(now.Unix()), big.NewInt(n))
	age.Mul(age, big.NewInt(int64(time.Second)))
	age.Add(age, big.NewInt(int64(now.Nanosecond())))
	if age.Cmp(big.NewInt(int64(tol))) > 0 {
		return signature.ErrTimestampTooOld
	}
	if age.Neg(age).Cmp(big.NewInt(int64(tol))) > 0 {
		return signature.ErrTimestampTooNew
	}
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		for _, sig := range strings.Split(sigs, " ") {
			if sig == want {
				return nil
			}
		}
	}
	return signature.ErrNoMatchingSignature
}

// FuzzVerify feeds arbitrary header values and bodies to Verify, which must
// never panic and must agree with naiveVerify, and checks that whatever
// SetHeaders produces verifies.
func FuzzVerify(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzVerify (the spec vector, rotation, tampering,
	// the tolerance edge, malformed and extreme values) and this one.
	f.Add("", "", "", []byte(nil), int64(0))

	keys := [][]byte{
		base64Decode(f, strings.TrimPrefix(specSecret, "whsec_")),
		base64Decode(f, strings.TrimPrefix(otherSecret, "whsec_")),
	}
	secrets := []signature.Secret{mustParse(f, specSecret), mustParse(f, otherSecret)}
	now := time.Unix(specTimestamp, 0)

	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte, unix int64) {
		h := http.Header{}
		h.Set(signature.HeaderID, id)
		h.Set(signature.HeaderTimestamp, ts)
		h.Set(signature.HeaderSignature, sigs)
		for _, tol := range []time.Duration{0, time.Second, time.Duration(unix)} {
			got := signature.Verify(secrets, h, body, now, tol)
			if tol <= 0 {
				tol = signature.DefaultTolerance
			}
			if want := naiveVerify(keys, id, ts, sigs, body, now, tol); !errors.Is(got, want) {
				t.Fatalf("Verify(%q, %q, %q, %q, tol %v) = %v, reference says %v", id, ts, sigs, body, tol, got, want)
			}
		}

		// Whatever the gateway signs verifies, at the time it was signed.
		if id == "" {
			return
		}
		signed := time.Unix(unix, 0)
		for i := range secrets {
			h := http.Header{}
			signature.SetHeaders(h, secrets[:i+1], id, signed, body)
			if err := signature.Verify(secrets[i:i+1], h, body, signed, 0); err != nil {
				t.Fatalf("own signature of %q at %d with %d secrets: %v", id, unix, i+1, err)
			}
		}
	})
}

func base64Decode(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
