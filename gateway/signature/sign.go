package signature

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Header names, in Go's canonical form so that both [http.Header.Get] and
// direct map indexing find them. HTTP header names are case-insensitive: these
// are the spec's webhook-id, webhook-timestamp and webhook-signature.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// version1 prefixes every symmetric (HMAC-SHA256) signature.
const version1 = "v1,"

// sigLen is the length of one signature: "v1," and the padded base64 of a
// SHA-256 sum, 44 characters.
const sigLen = len(version1) + (sha256.Size+2)/3*4

// Sign returns the signature "v1,"+base64(HMAC-SHA256(key,
// "{msgID}.{unix seconds of ts}.{body}")) of one message under one secret.
// Only whole seconds of ts are signed; the webhook-timestamp header must
// carry exactly ts.Unix() in decimal.
//
// msgID must not contain '.', or the signed content becomes ambiguous (the
// spec's advice); the gateway assigns ids itself, never taking them from
// clients.
//
// Sign is safe for concurrent use. Once the Secret's cached state is warm it
// allocates only the returned string.
func Sign(s Secret, msgID string, ts time.Time, body []byte) string {
	var buf [sigLen]byte
	return string(AppendSign(buf[:0], s, msgID, ts, body))
}

// AppendSign appends the signature that [Sign] returns to dst and returns
// the extended buffer. It does not allocate when dst has room for 47 more
// bytes.
func AppendSign(dst []byte, s Secret, msgID string, ts time.Time, body []byte) []byte {
	return appendSig(dst, s.key(), msgID, ts.Unix(), body)
}

func appendSig(dst []byte, k *key, msgID string, unix int64, body []byte) []byte {
	st := k.get()
	dst = append(dst, version1...)
	dst = base64.StdEncoding.AppendEncode(dst, st.sum(msgID, unix, body))
	k.put(st)
	return dst
}

// Header returns the webhook-signature header value: one signature per
// secret, in the order given, separated by single spaces. During a rotation
// pass both the new and the old secret. With no secrets it returns "".
func Header(secrets []Secret, msgID string, ts time.Time, body []byte) string {
	var buf [2*sigLen + 1]byte // room for two signatures: the rotation case
	b := buf[:0]
	for i, s := range secrets {
		if i > 0 {
			b = append(b, ' ')
		}
		b = AppendSign(b, s, msgID, ts, body)
	}
	return string(b)
}

// SetHeaders sets the three Standard Webhooks headers on h for one attempt:
// webhook-id to msgID, webhook-timestamp to ts in Unix seconds and
// webhook-signature to [Header](secrets, msgID, ts, body). It replaces any
// values already there. Call it afresh for every attempt, with the time of
// that attempt.
func SetHeaders(h http.Header, secrets []Secret, msgID string, ts time.Time, body []byte) {
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Header(secrets, msgID, ts, body))
}
