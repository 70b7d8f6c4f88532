package signature_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

func headers(id, ts, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set(signature.HeaderID, id)
	}
	if ts != "" {
		h.Set(signature.HeaderTimestamp, ts)
	}
	if sig != "" {
		h.Set(signature.HeaderSignature, sig)
	}
	return h
}

func TestVerify(t *testing.T) {
	oldS, newS := mustParse(t, specSecret), mustParse(t, otherSecret)
	wrong := mustParse(t, signature.NewSecret())
	signed := time.Unix(specTimestamp, 0)
	tsStr := strconv.FormatInt(specTimestamp, 10)
	body := []byte(specPayload)
	sigOld := specSignature
	sigNew := signature.Sign(newS, specMsgID, signed, body)
	both := signature.Header([]signature.Secret{newS, oldS}, specMsgID, signed, body)
	tol := 5 * time.Minute

	tests := []struct {
		name    string
		secrets []signature.Secret
		h       http.Header
		body    string
		now     time.Time
		tol     time.Duration
		want    error
	}{
		// Rotation: the sender signs with both secrets, receivers know one or both.
		{"old secret, old signature", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed, tol, nil},
		{"both signatures, receiver knows old", []signature.Secret{oldS}, headers(specMsgID, tsStr, both), specPayload, signed, tol, nil},
		{"both signatures, receiver knows new", []signature.Secret{newS}, headers(specMsgID, tsStr, both), specPayload, signed, tol, nil},
		{"both signatures, receiver knows both", []signature.Secret{newS, oldS}, headers(specMsgID, tsStr, both), specPayload, signed, tol, nil},
		{"new signature, receiver knows old and new", []signature.Secret{oldS, newS}, headers(specMsgID, tsStr, sigNew), specPayload, signed, tol, nil},
		{"old signature, receiver knows only new", []signature.Secret{newS}, headers(specMsgID, tsStr, sigOld), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"wrong secret", []signature.Secret{wrong}, headers(specMsgID, tsStr, both), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"no secrets", nil, headers(specMsgID, tsStr, both), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"other versions and junk around a valid one", []signature.Secret{oldS},
			headers(specMsgID, tsStr, "v1a,"+sigOld[3:]+"  v2,"+sigOld[3:]+" garbage "+sigOld+" v1,"), specPayload, signed, tol, nil},

		// Tampering.
		{"tampered body", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), `{"test": 2432232315}`, signed, tol, signature.ErrNoMatchingSignature},
		{"body with trailing newline", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload + "\n", signed, tol, signature.ErrNoMatchingSignature},
		{"re-encoded body", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), `{"test":2432232314}`, signed, tol, signature.ErrNoMatchingSignature},
		{"tampered id", []signature.Secret{oldS}, headers(specMsgID+"x", tsStr, sigOld), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"tampered timestamp", []signature.Secret{oldS}, headers(specMsgID, "1614265331", sigOld), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"timestamp with leading zero", []signature.Secret{oldS}, headers(specMsgID, "0"+tsStr, sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"tampered signature", []signature.Secret{oldS}, headers(specMsgID, tsStr, strings.Replace(sigOld, "g0h", "g0i", 1)), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature without v1 prefix", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld[3:]), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature with V1 prefix", []signature.Secret{oldS}, headers(specMsgID, tsStr, "V1,"+sigOld[3:]), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature without padding", []signature.Secret{oldS}, headers(specMsgID, tsStr, strings.TrimSuffix(sigOld, "=")), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature in url-safe base64", []signature.Secret{oldS}, headers(specMsgID, tsStr, "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE="), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature with tab", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld+"\t"), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"signature cut short", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld[:8]), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"bad base64", []signature.Secret{oldS}, headers(specMsgID, tsStr, "v1,dawfeoifkpqwoekfpqoekf"), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"v1, alone", []signature.Secret{oldS}, headers(specMsgID, tsStr, "v1,"), specPayload, signed, tol, signature.ErrNoMatchingSignature},
		{"only spaces", []signature.Secret{oldS}, headers(specMsgID, tsStr, "   "), specPayload, signed, tol, signature.ErrNoMatchingSignature},

		// Missing and malformed headers.
		{"no headers", []signature.Secret{oldS}, http.Header{}, specPayload, signed, tol, signature.ErrMissingHeaders},
		{"no id", []signature.Secret{oldS}, headers("", tsStr, sigOld), specPayload, signed, tol, signature.ErrMissingHeaders},
		{"no timestamp", []signature.Secret{oldS}, headers(specMsgID, "", sigOld), specPayload, signed, tol, signature.ErrMissingHeaders},
		{"no signature", []signature.Secret{oldS}, headers(specMsgID, tsStr, ""), specPayload, signed, tol, signature.ErrMissingHeaders},
		{"timestamp not a number", []signature.Secret{oldS}, headers(specMsgID, "hello", sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"timestamp over int64", []signature.Secret{oldS}, headers(specMsgID, "99999999999999999999", sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"timestamp with plus sign", []signature.Secret{oldS}, headers(specMsgID, "+"+tsStr, sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"timestamp with space", []signature.Secret{oldS}, headers(specMsgID, tsStr+" ", sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"timestamp as RFC 3339", []signature.Secret{oldS}, headers(specMsgID, "2021-02-25T15:02:10Z", sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},
		{"timestamp with fraction", []signature.Secret{oldS}, headers(specMsgID, tsStr+".5", sigOld), specPayload, signed, tol, signature.ErrInvalidTimestamp},

		// Tolerance edges: the spec vector is signed at `signed`.
		{"now exactly tolerance later", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(tol), tol, nil},
		{"now a nanosecond past tolerance", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(tol + time.Nanosecond), tol, signature.ErrTimestampTooOld},
		{"now exactly tolerance earlier", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(-tol), tol, nil},
		{"now a nanosecond before tolerance", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(-tol - time.Nanosecond), tol, signature.ErrTimestampTooNew},
		{"zero tolerance means default, inside", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(signature.DefaultTolerance), 0, nil},
		{"zero tolerance means default, outside", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(signature.DefaultTolerance + time.Second), 0, signature.ErrTimestampTooOld},
		{"negative tolerance means default", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(-signature.DefaultTolerance), -time.Second, nil},
		{"short tolerance", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(2 * time.Second), time.Second, signature.ErrTimestampTooOld},
		{"timestamp checked before signature", []signature.Secret{wrong}, headers(specMsgID, tsStr, sigOld), specPayload, signed.Add(time.Hour), tol, signature.ErrTimestampTooOld},
		{"far past timestamp", []signature.Secret{oldS}, headers(specMsgID, "-9223372036854775808", sigOld), specPayload, signed, tol, signature.ErrTimestampTooOld},
		{"far future timestamp", []signature.Secret{oldS}, headers(specMsgID, "9223372036854775807", sigOld), specPayload, signed, tol, signature.ErrTimestampTooNew},
		{"zero now", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, time.Time{}, tol, signature.ErrTimestampTooNew},
		{"huge tolerance", []signature.Secret{oldS}, headers(specMsgID, tsStr, sigOld), specPayload, time.Time{}, time.Duration(1<<63 - 1), signature.ErrTimestampTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.Verify(tt.secrets, tt.h, []byte(tt.body), tt.now, tt.tol)
			if err != tt.want { //nolint:errorlint // sentinels are returned unwrapped: identity is the contract
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyReadsEveryListedSignature(t *testing.T) {
	s := mustParse(t, specSecret)
	ts := time.Unix(specTimestamp, 0)
	// Many wrong signatures before the right one: it is still found.
	wrong := strings.Repeat("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ", 50)
	h := headers(specMsgID, strconv.FormatInt(specTimestamp, 10), wrong+specSignature)
	if err := signature.Verify([]signature.Secret{s}, h, []byte(specPayload), ts, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyErrorsAreDistinct(t *testing.T) {
	errs := []error{
		signature.ErrInvalidSecret, signature.ErrMissingHeaders, signature.ErrInvalidTimestamp,
		signature.ErrTimestampTooOld, signature.ErrTimestampTooNew, signature.ErrNoMatchingSignature,
	}
	for i, a := range errs {
		if !strings.HasPrefix(a.Error(), "signature: ") {
			t.Errorf("%q lacks the package prefix", a)
		}
		for _, b := range errs[i+1:] {
			if errors.Is(a, b) {
				t.Errorf("%v is %v", a, b)
			}
		}
	}
}
