package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// keyring checks API keys in constant time. The zero keyring is open.
type keyring struct {
	hashes [][sha256.Size]byte
}

func newKeyring(keys []string) keyring {
	var k keyring
	for _, key := range keys {
		k.hashes = append(k.hashes, sha256.Sum256([]byte(key)))
	}
	return k
}

func (k keyring) open() bool { return len(k.hashes) == 0 }

// valid compares key with every configured key, taking the same time
// whichever matches (hashing first makes lengths equal).
func (k keyring) valid(key string) bool {
	h := sha256.Sum256([]byte(key))
	ok := 0
	for _, want := range k.hashes {
		ok |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	return ok == 1
}

// requireKey is middleware demanding `Authorization: Bearer <key>` when keys
// are configured. With allowQuery, the key may instead come as the
// access_token query parameter (browsers cannot set WebSocket headers); it
// is removed from the request's URL so that nothing downstream logs it.
func (k keyring) requireKey(allowQuery bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k.open() {
				next.ServeHTTP(w, r)
				return
			}
			key, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !found && allowQuery {
				q := r.URL.Query()
				key, found = q.Get("access_token"), q.Has("access_token")
				q.Del("access_token")
				r.URL.RawQuery = q.Encode()
			}
			if !found || !k.valid(strings.TrimSpace(key)) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="eventgate"`)
				fail(w, http.StatusUnauthorized, "a valid API key is required: Authorization: Bearer <key>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
