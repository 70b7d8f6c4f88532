package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
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

// match compares key with every configured key, taking the same time
// whichever matches (hashing first makes lengths equal). It returns the
// index of the key that matched, or -1.
func (k keyring) match(key string) int {
	h := sha256.Sum256([]byte(key))
	found := -1
	for i, want := range k.hashes {
		eq := subtle.ConstantTimeCompare(h[:], want[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

// identityKey is the context key of the identity requireAuth settled on.
type identityKey struct{}

// identity returns who the request is, for per-client limits: "key:<n>"
// (the n-th configured API key) once requireAuth accepted a key, "token:<sub>" (or
// "token#<hash>" without a sub) for a token, otherwise
// "ip:<host>" of the TCP peer. Never a value the client can vary at will:
// not the raw Authorization header, nor X-Forwarded-For.
func identity(r *http.Request) string {
	if id, ok := r.Context().Value(identityKey{}).(string); ok {
		return id
	}
	return "ip:" + clientIP(r)
}

// bearerToken returns the credentials of an `Authorization: Bearer <token>`
// header. The scheme is case-insensitive (RFC 9110 §11.1) and any run of
// spaces or tabs may separate it from the token, around which blanks are
// trimmed.
func bearerToken(h string) (string, bool) {
	h = strings.TrimLeft(h, " \t")
	i := strings.IndexAny(h, " \t")
	if i < 0 || !strings.EqualFold(h[:i], "Bearer") {
		return "", false
	}
	tok := strings.Trim(h[i:], " \t")
	return tok, tok != ""
}

// requireAuth is middleware demanding `Authorization: Bearer <credential>`
// when API keys or token keys are configured: an API key (full access) or
// a signed token (tokenVerifier: what its claims grant, see accessOf).
// With allowQuery, the credential may instead come as the access_token
// query parameter (browsers cannot set WebSocket headers); it is removed
// from the request's URL so that nothing downstream logs it. An accepted
// request carries its identity (see identity); a token's sub is logged,
// never the token.
func (s *Server) requireAuth(allowQuery bool) func(http.Handler) http.Handler {
	k, tokens := s.keys, s.tokens
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k.open() && tokens == nil {
				next.ServeHTTP(w, r)
				return
			}
			key, found := bearerToken(r.Header.Get("Authorization"))
			if !found && allowQuery {
				q := r.URL.Query()
				key, found = q.Get("access_token"), q.Has("access_token")
				q.Del("access_token")
				r.URL.RawQuery = q.Encode()
			}
			key = strings.TrimSpace(key)
			i := -1
			if found && !k.open() {
				i = k.match(key)
			}
			if i >= 0 {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, "key:"+strconv.Itoa(i))))
				return
			}
			what := "a valid API key is required: Authorization: Bearer <key>"
			if tokens != nil {
				what = "a valid API key or token is required: Authorization: Bearer <key or token>"
				if found && looksLikeJWT(key) {
					a, err := tokens.verify(key)
					if err == nil {
						s.cfg.Logger.Debug("token accepted", "sub", a.sub, "method", r.Method, "path", r.URL.Path)
						ctx := context.WithValue(r.Context(), identityKey{}, tokenIdentity(a, key))
						next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, accessKey{}, a)))
						return
					}
					s.cfg.Logger.Debug("token refused", "method", r.Method, "path", r.URL.Path, "err", err)
					what = "the token is not valid: " + err.Error()
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventgate"`)
			fail(w, http.StatusUnauthorized, what)
		})
	}
}
