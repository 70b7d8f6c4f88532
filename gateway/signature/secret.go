package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// secretPrefix starts every serialized secret, as Standard Webhooks asks.
const secretPrefix = "whsec_"

// Key sizes accepted by [ParseSecret], from the Standard Webhooks spec
// ("at least 24 bytes (192 bits, 512 maximum)"), and the size [NewSecret]
// generates.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
	newKeyBytes = 32
)

// ErrInvalidSecret is returned by [ParseSecret] for anything but "whsec_"
// followed by the canonical standard base64 encoding (with padding) of 24 to
// 64 bytes.
var ErrInvalidSecret = errors.New("signature: invalid secret: want whsec_ and base64 of 24 to 64 bytes")

// Secret is a parsed signing secret. The zero Secret holds no key: [Sign]
// with it yields a signature that [Verify] never accepts.
//
// A Secret is immutable and safe for concurrent use; copies share their
// state. It caches HMAC state for reuse, so parse a secret once (for example
// when a webhook is loaded) rather than on every delivery.
//
// A Secret never prints its key: String and the fmt verbs show
// "whsec_[redacted]". Keep the string that was parsed if it must be stored or
// shown again.
type Secret struct {
	k *key
}

type key struct {
	raw  []byte
	pool sync.Pool // of *macState
}

// macState is the per-use scratch of one signature: an HMAC already keyed,
// a buffer for "{id}.{timestamp}." and room for the sum.
type macState struct {
	h   hash.Hash
	buf []byte
	out [sha256.Size]byte
}

// maxPooledBuf bounds the scratch buffer kept in the pool, so one huge
// message id does not pin memory.
const maxPooledBuf = 1 << 10

// emptyKey stands in for the zero Secret's missing key.
var emptyKey = &key{}

// ParseSecret parses "whsec_" + base64(key). It returns [ErrInvalidSecret]
// (possibly wrapped) when s is not exactly that form: the prefix is required,
// the base64 must be canonical standard encoding with padding, and the key
// must be 24 to 64 bytes long (the spec's bounds).
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return Secret{}, ErrInvalidSecret
	}
	if len(enc) > base64.StdEncoding.EncodedLen(maxKeyBytes) {
		return Secret{}, ErrInvalidSecret
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	// DecodeString skips '\r' and '\n' and tolerates non-zero padding bits;
	// insisting on the canonical form keeps one secret one string.
	if err != nil || len(raw) < minKeyBytes || len(raw) > maxKeyBytes ||
		base64.StdEncoding.EncodeToString(raw) != enc {
		return Secret{}, ErrInvalidSecret
	}
	return Secret{k: &key{raw: raw}}, nil
}

// NewSecret returns a fresh secret: "whsec_" + base64 of 32 bytes from
// crypto/rand. It cannot fail: since Go 1.24 crypto/rand.Read never returns
// an error (it crashes the program if the OS source fails), so there is no
// error to report.
func NewSecret() string {
	b := make([]byte, newKeyBytes)
	_, _ = rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// String returns "whsec_[redacted]", never the key.
func (s Secret) String() string { return secretPrefix + "[redacted]" }

// GoString returns the same as String, so %#v does not reveal the key either.
func (s Secret) GoString() string { return s.String() }

func (s Secret) key() *key {
	if s.k == nil {
		return emptyKey
	}
	return s.k
}

func (k *key) get() *macState {
	if st, ok := k.pool.Get().(*macState); ok {
		return st
	}
	return &macState{h: hmac.New(sha256.New, k.raw)}
}

func (k *key) put(st *macState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	k.pool.Put(st)
}

// sum returns HMAC-SHA256 over "{msgID}.{unix}.{body}". The result aliases
// st and is valid until st is put back.
func (st *macState) sum(msgID string, unix int64, body []byte) []byte {
	st.buf = append(st.buf[:0], msgID...)
	st.buf = append(st.buf, '.')
	st.buf = strconv.AppendInt(st.buf, unix, 10)
	st.buf = append(st.buf, '.')
	st.h.Reset()
	st.h.Write(st.buf)
	st.h.Write(body)
	return st.h.Sum(st.out[:0])
}
