package signature

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock, in either direction, when no tolerance is given. It is the
// value the Standard Webhooks reference libraries use.
const DefaultTolerance = 5 * time.Minute

// Errors returned by [Verify] and [Verifier.VerifyRequest]. They are returned
// as is, never wrapped, and say nothing about the secrets.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty.
	ErrMissingHeaders = errors.New("signature: missing webhook-id, webhook-timestamp or webhook-signature header")
	// ErrInvalidTimestamp: webhook-timestamp is not an int64 in canonical
	// decimal form (no '+', no leading zeros, no spaces, no fraction).
	ErrInvalidTimestamp = errors.New("signature: invalid webhook-timestamp header")
	// ErrTimestampTooOld: the timestamp is more than the tolerance in the past.
	ErrTimestampTooOld = errors.New("signature: webhook-timestamp too old")
	// ErrTimestampTooNew: the timestamp is more than the tolerance in the future.
	ErrTimestampTooNew = errors.New("signature: webhook-timestamp too new")
	// ErrNoMatchingSignature: no "v1," signature in webhook-signature matches
	// any of the secrets.
	ErrNoMatchingSignature = errors.New("signature: no matching signature")
)

// Verify checks that h carries a valid Standard Webhooks signature of body
// under at least one of secrets, made within tolerance of now. A tolerance
// of zero or less means [DefaultTolerance]; a timestamp exactly tolerance
// away is accepted.
//
// The webhook-signature header may list several space-separated signatures;
// one matching any secret is enough, which is what secret rotation needs.
// Signatures of other versions (such as "v1a,") and malformed ones are
// skipped. Comparison is constant-time. Zero Secrets never match, and with no
// secrets Verify returns [ErrNoMatchingSignature].
//
// Checks run in this order, returning the first failure: [ErrMissingHeaders],
// [ErrInvalidTimestamp], [ErrTimestampTooOld] or [ErrTimestampTooNew], then
// [ErrNoMatchingSignature]. body must be the raw bytes received, not
// re-encoded JSON. Only the first value of each header is read. Verify is
// safe for concurrent use.
func Verify(secrets []Secret, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := parseTimestamp(ts)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if err := checkTimestamp(unix, now, tolerance); err != nil {
		return err
	}

	got := []byte(sigs)
	var buf [sigLen]byte
	for _, s := range secrets {
		if s.k == nil {
			continue
		}
		want := appendSig(buf[:0], s.k, id, unix, body)
		for sig := range bytes.SplitSeq(got, []byte{' '}) {
			// The length and the "v1," prefix are public; the rest is
			// compared in constant time.
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return ErrNoMatchingSignature
}

// parseTimestamp accepts the canonical decimal form of an int64, which is
// what the signer formats and so what was signed.
func parseTimestamp(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ErrInvalidTimestamp
	}
	var buf [20]byte
	if string(strconv.AppendInt(buf[:0], n, 10)) != s {
		return 0, ErrInvalidTimestamp
	}
	return n, nil
}

// checkTimestamp reports whether unix seconds is within tol of now. It works
// in unsigned seconds first, so that no int64 value can overflow.
func checkTimestamp(unix int64, now time.Time, tol time.Duration) error {
	const maxSecs = uint64(math.MaxInt64/time.Second) - 1
	nowSecs, nanos := now.Unix(), time.Duration(now.Nanosecond())
	if unix <= nowSecs {
		secs := uint64(nowSecs) - uint64(unix) // exact, even across int64 range
		if secs > maxSecs || time.Duration(secs)*time.Second+nanos > tol {
			return ErrTimestampTooOld
		}
		return nil
	}
	secs := uint64(unix) - uint64(nowSecs)
	if secs > maxSecs || time.Duration(secs)*time.Second-nanos > tol {
		return ErrTimestampTooNew
	}
	return nil
}
