package api

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/golang-jwt/jwt/v5"
)

// Token defaults.
const (
	DefaultTokenMaxTTL = 24 * time.Hour
	// TokenLeeway is the clock skew allowed on a token's exp, nbf and iat.
	TokenLeeway = 30 * time.Second
	// defaultMintTTL is the lifetime of a minted token that names none.
	defaultMintTTL = 15 * time.Minute
)

// tokenClaims is a token's payload: the registered claims (exp required)
// and eventgate's namespace.
type tokenClaims struct {
	jwt.RegisteredClaims
	Eventgate *scopeClaims `json:"eventgate,omitempty"`
}

// scopeClaims is the "eventgate" claim. An absent list grants nothing.
type scopeClaims struct {
	Subscribe []string `json:"subscribe,omitempty"`
	Publish   []string `json:"publish,omitempty"`
	Admin     bool     `json:"admin,omitempty"`
}

// access is what a token lets its bearer do. A request without one (an
// API key, or an open API) has full access.
type access struct {
	sub       string // the token's sub, for logs
	subscribe store.Filter
	publish   store.Filter
	admin     bool
	expires   time.Time
}

// tokenVerifier checks signed tokens: HS256 against the secret, and the
// public key's one algorithm (RS256, ES256 or EdDSA) against the key.
// Each key is only ever used with its own algorithm: an HS256 token is
// never checked against the public key, and "none" is never accepted.
type tokenVerifier struct {
	secret []byte
	pub    crypto.PublicKey
	parser *jwt.Parser
}

// newTokenVerifier returns nil when neither key is set.
func newTokenVerifier(secret []byte, pub crypto.PublicKey) *tokenVerifier {
	var algs []string
	if len(secret) > 0 {
		algs = append(algs, jwt.SigningMethodHS256.Alg())
	}
	if pub != nil {
		alg, err := publicKeyAlg(pub)
		if err != nil {
			panic("api.New: Config.TokenPublicKey: " + err.Error())
		}
		algs = append(algs, alg)
	}
	if len(algs) == 0 {
		return nil
	}
	return &tokenVerifier{secret: secret, pub: pub, parser: jwt.NewParser(
		jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(TokenLeeway))}
}

// publicKeyAlg is the one algorithm accepted with pub.
func publicKeyAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("an RSA key must have at least 2048 bits")
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("an ECDSA key must be on P-256 (ES256)")
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("unsupported key type %T: want RSA, ECDSA P-256 or Ed25519", pub)
}

// ParseTokenPublicKey reads a PEM public key (PKIX "PUBLIC KEY", or
// "RSA PUBLIC KEY") of a kind tokens may be signed with: RSA of 2048 bits
// or more (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA).
func ParseTokenPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want a PUBLIC KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	if _, err := publicKeyAlg(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// keyFunc picks the key for a token's algorithm; WithValidMethods has
// already refused any algorithm not configured.
func (v *tokenVerifier) keyFunc(t *jwt.Token) (any, error) {
	if t.Method == jwt.SigningMethodHS256 && len(v.secret) > 0 {
		return v.secret, nil
	}
	if v.pub != nil {
		if alg, _ := publicKeyAlg(v.pub); alg == t.Method.Alg() {
			return v.pub, nil
		}
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", t.Method.Alg())
}

// verify checks raw and returns what it grants. Its errors are fit for
// the client: they never hold the token.
func (v *tokenVerifier) verify(raw string) (*access, error) {
	var c tokenClaims
	if _, err := v.parser.ParseWithClaims(raw, &c, v.keyFunc); err != nil {
		return nil, err
	}
	a := &access{sub: c.Subject, subscribe: store.Filter{}, publish: store.Filter{}, expires: c.ExpiresAt.Time}
	if c.Eventgate == nil {
		return a, nil
	}
	var err error
	if a.subscribe, err = scopeFilter(c.Eventgate.Subscribe); err != nil {
		return nil, fmt.Errorf("eventgate.subscribe: %w", err)
	}
	if a.publish, err = scopeFilter(c.Eventgate.Publish); err != nil {
		return nil, fmt.Errorf("eventgate.publish: %w", err)
	}
	a.admin = c.Eventgate.Admin
	return a, nil
}

// scopeFilter parses a claim's patterns: none gives the empty Filter,
// which matches nothing (not the nil Filter, which matches everything).
func scopeFilter(pats []string) (store.Filter, error) {
	if len(pats) == 0 {
		return store.Filter{}, nil
	}
	if len(pats) > store.MaxFilterPatterns {
		return nil, fmt.Errorf("at most %d patterns", store.MaxFilterPatterns)
	}
	return store.ParseFilter(pats)
}

// tokenIdentity is who a token is for per-client limits: its sub, or a
// hash of the token when it has none.
func tokenIdentity(a *access, raw string) string {
	if a.sub != "" {
		return "token:" + a.sub
	}
	h := sha256.Sum256([]byte(raw))
	return "token#" + hex.EncodeToString(h[:8])
}

// looksLikeJWT reports whether s has a JWT's three dot-separated parts.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

// accessKey is the context key of a token's access.
type accessKey struct{}

// accessOf returns what the request's token grants, or nil for full
// access (an API key, or an open API).
func accessOf(r *http.Request) *access {
	a, _ := r.Context().Value(accessKey{}).(*access)
	return a
}

// requireAdmin is middleware letting through API keys, an open API and
// tokens with admin: true; other tokens get 403.
func requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := accessOf(r); a != nil && !a.admin {
			fail(w, http.StatusForbidden, "this endpoint needs an API key or a token with \"admin\": true")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readFilter resolves the filter of a replay or stream for a's scope:
// with no patterns asked (pats empty) the token's subscribe patterns;
// otherwise asked itself, once every pattern is inside the scope. A
// problem (403) names each pattern outside it, under field.
func (a *access) readFilter(field string, pats []string, asked store.Filter) (store.Filter, *Problem) {
	if a == nil {
		return asked, nil
	}
	if len(a.subscribe) == 0 && a.subscribe != nil {
		p := newProblem(http.StatusForbidden, "the token grants no subscribe patterns (eventgate.subscribe)")
		return nil, &p
	}
	if len(pats) == 0 {
		return a.subscribe, nil
	}
	var errs []FieldError
	for _, s := range pats {
		pt, err := store.ParsePattern(s)
		if err != nil || !a.subscribe.Covers(pt) {
			errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf("%q is outside the token's subscribe patterns %v", s, a.subscribe.Strings())})
		}
	}
	if errs != nil {
		p := newProblem(http.StatusForbidden, "a pattern asked for is outside the token's subscribe patterns: "+strings.Join(outsideOf(errs), ", "), errs...)
		return nil, &p
	}
	return asked, nil
}

// outsideOf lists the quoted patterns of readFilter's errors.
func outsideOf(errs []FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i], _, _ = strings.Cut(e.Message, " is outside")
	}
	return out
}

// checkPublish returns a 403 problem naming the first event whose type
// a's publish patterns do not match (field "/i/type" in a batch, "/type"
// for one event), or nil.
func (a *access) checkPublish(events []store.Event, single bool) *Problem {
	if a == nil {
		return nil
	}
	for i, e := range events {
		if a.publish.Match(e.Type) {
			continue
		}
		field := "/type"
		if !single {
			field = fmt.Sprintf("/%d/type", i)
		}
		msg := fmt.Sprintf("%q matches none of the token's publish patterns %v", e.Type, a.publish.Strings())
		detail := "the token may not publish " + e.Type
		if !single {
			detail = fmt.Sprintf("the batch was not stored: event %d's type %s is outside the token's publish patterns", i, e.Type)
		}
		p := newProblem(http.StatusForbidden, detail, FieldError{Field: field, Message: msg})
		return &p
	}
	return nil
}

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest struct {
	Subscribe []string `json:"subscribe" validate:"omitnil,max=100,dive,pattern"`
	Publish   []string `json:"publish" validate:"omitnil,max=100,dive,pattern"`
	TTL       string   `json:"ttl" validate:"max=64"`
	Sub       string   `json:"sub" validate:"max=256"`
	Admin     bool     `json:"admin"`
}

// tokenAnswer is the answer of POST /v1/tokens.
type tokenAnswer struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// mintToken handles POST /v1/tokens: an HS256 token signed with
// TokenSecret. Without a secret it answers 409: the gateway's
// configuration, not the request, is what stands in the way.
func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) {
	if s.tokens == nil || len(s.tokens.secret) == 0 {
		fail(w, http.StatusConflict, "this gateway has no --token-secret, so it cannot sign tokens; set one (or sign tokens yourself for --token-public-key)")
		return
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyBufs.Put(buf)
	if !s.readBody(w, r, buf) {
		return
	}
	var in tokenRequest
	if p := s.decodeStrict(buf.Bytes(), "", &in); p != nil {
		p.Detail = strings.Replace(p.Detail, "the event is invalid", "the token request is invalid", 1)
		writeProblem(w, *p)
		return
	}
	ttl := defaultMintTTL
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 {
			fail(w, http.StatusUnprocessableEntity, "the token request is invalid", FieldError{Field: "/ttl", Message: "must be a positive Go duration such as 15m or 1h30m"})
			return
		}
		ttl = d
	}
	if ttl > s.cfg.TokenMaxTTL {
		fail(w, http.StatusUnprocessableEntity, "the token request is invalid", FieldError{Field: "/ttl", Message: fmt.Sprintf("must be at most %s (--token-max-ttl)", s.cfg.TokenMaxTTL)})
		return
	}
	now := time.Now().Truncate(time.Second)
	exp := now.Add(ttl)
	if a := accessOf(r); a != nil && exp.After(a.expires) {
		// A token mints none that outlives it: a leaked admin token cannot
		// renew itself for ever. (Its scope is not checked: admin is full
		// access, as it may create webhooks that receive every event.)
		exp = a.expires
	}
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: in.Sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)},
		Eventgate:        &scopeClaims{Subscribe: in.Subscribe, Publish: in.Publish, Admin: in.Admin},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.tokens.secret)
	if err != nil {
		s.Error(w, r, "sign token", err)
		return
	}
	s.cfg.Logger.Info("token minted", "sub", in.Sub, "expires_at", exp, "admin", in.Admin)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenAnswer{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}
