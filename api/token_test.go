package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eventgate/eventgate/api"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testTokenSecret = "test-secret-of-at-least-32-bytes!"
	testKey         = "test-api-key"
)

// scope builds the claims of a token: sub, the eventgate namespace (nil
// lists are left out: absent grants nothing) and exp (zero: none).
func scope(sub string, subscribe, publish []string, admin bool, exp time.Time) jwt.MapClaims {
	ns := map[string]any{"admin": admin}
	if subscribe != nil {
		ns["subscribe"] = subscribe
	}
	if publish != nil {
		ns["publish"] = publish
	}
	c := jwt.MapClaims{"eventgate": ns, "iat": time.Now().Unix()}
	if sub != "" {
		c["sub"] = sub
	}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	return c
}

// sign signs claims with method and key.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hs256(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte(testTokenSecret), claims)
}

// withTokens configures an API key and the test token secret.
func withTokens(o *options) {
	o.API.Keys = []string{testKey}
	o.API.TokenSecret = testTokenSecret
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// postAs posts an event body with a credential.
func (g *testGateway) postAs(t testing.TB, tok, body string) (*http.Response, []byte) {
	t.Helper()
	return g.do(t, http.MethodPost, "/v1/events", "application/json", []byte(body), bearer(tok)...)
}

func (g *testGateway) getAs(t testing.TB, tok, path string) (*http.Response, []byte) {
	t.Helper()
	return g.do(t, http.MethodGet, path, "", nil, bearer(tok)...)
}

// replayTypes returns the types of a replay page.
func replayTypes(t testing.TB, body []byte) []string {
	t.Helper()
	var page struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, e.Type)
	}
	return out
}

// TestTokenScopes: publish and subscribe patterns limit ingest, replay and
// reads by seq; admin routes need admin: true; API keys keep full access.
func TestTokenScopes(t *testing.T) {
	g := startGateway(t, withTokens)
	s42 := g.publishN(t, "user.42.created", 1, "")
	s43 := g.publishN(t, "user.43.created", 1, "")
	g.publishN(t, "user.42.profile.updated", 1, "")
	exp := time.Now().Add(time.Hour)
	user := hs256(t, scope("user-42", []string{"user.42.>"}, []string{"chat.42.*"}, false, exp))

	// Publish: inside, outside, and a batch refused whole naming the item.
	resp, body := g.postAs(t, user, `{"type":"chat.42.hello","data":{}}`)
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = g.postAs(t, user, `{"type":"chat.43.hello","data":{}}`)
	if p := wantProblem(t, resp, body, http.StatusForbidden, "forbidden"); !slices.Equal(p.fields(), []string{"/type"}) {
		t.Fatalf("fields = %v", p.fields())
	}
	before := g.Ring.Bounds().Newest
	resp, body = g.postAs(t, user, `[{"type":"chat.42.a","data":1},{"type":"chat.42.b","data":1},{"type":"chat.42.c","data":1},{"type":"user.42.x","data":1}]`)
	if p := wantProblem(t, resp, body, http.StatusForbidden, "forbidden"); !slices.Equal(p.fields(), []string{"/3/type"}) {
		t.Fatalf("fields = %v", p.fields())
	}
	if after := g.Ring.Bounds().Newest; after != before {
		t.Fatalf("a refused batch stored events: newest %d -> %d", before, after)
	}
	noPublish := hs256(t, scope("user-42", []string{"user.42.>"}, nil, false, exp))
	resp, body = g.postAs(t, noPublish, `{"type":"chat.42.hello","data":{}}`)
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden")

	// Replay: no type gets the token's patterns; an outside pattern is 403
	// naming it; an inside one is served.
	resp, body = g.getAs(t, user, "/v1/events")
	wantStatus(t, resp, body, http.StatusOK)
	if got := replayTypes(t, body); !slices.Equal(got, []string{"user.42.created", "user.42.profile.updated"}) {
		t.Fatalf("replay without types = %v, want only user.42.>", got)
	}
	resp, body = g.getAs(t, user, "/v1/events?type=user.42.*,user.>")
	p := wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	if !strings.Contains(p.Detail, `"user.>"`) || strings.Contains(p.Detail, `"user.42.*"`) || !slices.Equal(p.fields(), []string{"type"}) {
		t.Fatalf("problem = %+v, want it to name user.> only", p)
	}
	resp, body = g.getAs(t, user, "/v1/events?type=>")
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	resp, body = g.getAs(t, user, "/v1/events?type=user.42.*")
	wantStatus(t, resp, body, http.StatusOK)
	if got := replayTypes(t, body); !slices.Equal(got, []string{"user.42.created"}) {
		t.Fatalf("replay of user.42.* = %v", got)
	}
	resp, body = g.getAs(t, hs256(t, scope("x", nil, []string{"a"}, false, exp)), "/v1/events")
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden") // no subscribe claim: nothing to read

	// By seq: outside the scope is as if never stored.
	resp, body = g.getAs(t, user, "/v1/events/"+itoa(s43))
	wantProblem(t, resp, body, http.StatusNotFound, "not-found")
	resp, body = g.getAs(t, user, "/v1/events/"+itoa(s42))
	wantStatus(t, resp, body, http.StatusOK)

	// Admin routes: 403 for a token without admin, open to admin tokens
	// and API keys.
	admin := hs256(t, scope("ops", nil, nil, true, exp))
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/wh_x/deliveries"} {
		resp, body = g.getAs(t, user, path)
		wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	}
	resp, body = g.do(t, http.MethodPost, "/v1/tokens", "application/json", []byte(`{"subscribe":[">"]}`), bearer(user)...)
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	resp, body = g.do(t, http.MethodGet, "/v1/webhooks/wh_x/deliveries/stream?access_token="+user, "", nil)
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	resp, body = g.getAs(t, admin, "/v1/webhooks")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = g.getAs(t, testKey, "/v1/webhooks")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = g.getAs(t, testKey, "/v1/events?type=>")
	wantStatus(t, resp, body, http.StatusOK)
	if got := len(replayTypes(t, body)); got != 4 {
		t.Fatalf("an API key replayed %d events, want all 4", got)
	}
}

// TestTokenRejected: every token the gateway must not accept is 401.
func TestTokenRejected(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	g := startGateway(t, func(o *options) {
		withTokens(o)
		k, err := api.ParseTokenPublicKey(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		o.API.TokenPublicKey = k
	})
	g.publishN(t, "user.42.created", 1, "")
	subs := []string{"user.42.>"}
	hour := time.Now().Add(time.Hour)
	noExp := scope("u", subs, nil, false, time.Time{})
	nbf := scope("u", subs, nil, false, hour)
	nbf["nbf"] = time.Now().Add(5 * time.Minute).Unix()
	iat := scope("u", subs, nil, false, hour)
	iat["iat"] = time.Now().Add(5 * time.Minute).Unix()
	cases := map[string]string{
		"no exp":            hs256(t, noExp),
		"expired":           hs256(t, scope("u", subs, nil, false, time.Now().Add(-2*time.Minute))),
		"nbf in the future": hs256(t, nbf),
		"iat in the future": hs256(t, iat),
		"wrong secret":      sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-more"), scope("u", subs, nil, false, hour)),
		"alg confusion":     sign(t, jwt.SigningMethodHS256, pubPEM, scope("u", subs, nil, false, hour)),
		"alg none":          sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, scope("u", subs, nil, false, hour)),
		"HS384":             sign(t, jwt.SigningMethodHS384, []byte(testTokenSecret), scope("u", subs, nil, false, hour)),
		"tampered":          tamper(t, hs256(t, scope("u", subs, nil, false, hour))),
		"bad pattern claim": hs256(t, scope("u", []string{"user..x"}, nil, false, hour)),
		"not a key":         "nope",
	}
	for name, tok := range cases {
		resp, body := g.getAs(t, tok, "/v1/events")
		p := wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
		if strings.Contains(p.Detail, tok) {
			t.Errorf("%s: the problem repeats the token", name)
		}
	}
	resp, body := g.do(t, http.MethodGet, "/v1/events", "", nil)
	wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized") // none: tokens configured close the API

	// The same claims pass when signed properly: Ed25519 and HS256.
	good := scope("u", subs, nil, false, hour)
	for _, tok := range []string{sign(t, jwt.SigningMethodEdDSA, priv, good), hs256(t, good)} {
		resp, body = g.getAs(t, tok, "/v1/events")
		wantStatus(t, resp, body, http.StatusOK)
		if got := replayTypes(t, body); !slices.Equal(got, []string{"user.42.created"}) {
			t.Fatalf("replay = %v", got)
		}
		// Not from the query outside streams.
		resp, body = g.do(t, http.MethodGet, "/v1/events?access_token="+tok, "", nil)
		wantProblem(t, resp, body, http.StatusUnauthorized, "unauthorized")
	}
}

// tamper changes the payload of a signed token, keeping its signature.
func tamper(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	claims := scope("u", []string{">"}, []string{">"}, true, time.Now().Add(time.Hour))
	forged := sign(t, jwt.SigningMethodHS256, []byte("x"), claims)
	parts[1] = strings.Split(forged, ".")[1]
	return strings.Join(parts, ".")
}

// TestTokenStreamScope: a token's stream (WebSocket and SSE, token in
// access_token) carries only its patterns; an outside pattern is 403 before
// any upgrade.
func TestTokenStreamScope(t *testing.T) {
	g := startGateway(t, withTokens)
	tok := hs256(t, scope("user-42", []string{"user.42.>"}, nil, false, time.Now().Add(time.Hour)))
	ws := g.dialStream(t, "/v1/stream?after=0&access_token="+tok, nil)
	sse := g.openSSE(t, "/v1/stream?after=0&access_token="+tok)
	ws.hello()
	if m, err := sse.next(); err != nil || m.Event != "hello" {
		t.Fatalf("sse hello = %+v, %v", m, err)
	}
	g.publishN(t, "user.43.created", 2, "")
	g.publishN(t, "user.42.created", 1, "")
	g.publishN(t, "user.4.created", 1, "")
	last := g.publishN(t, "user.42.deleted", 1, "")
	got := ws.events(2)
	if got[0].Seq != 3 || got[1].Seq != last {
		t.Fatalf("websocket got %v, want seqs 3 and %d only", got, last)
	}
	for _, want := range []uint64{3, last} {
		m, err := sse.next()
		if err != nil || !strings.HasSuffix(m.ID, "-"+itoa(want)) {
			t.Fatalf("sse got %+v, %v; want seq %d", m, err, want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, q := range []string{"types=user.>", "types=user.*.created", "types=>"} {
		conn, resp, err := websocket.Dial(ctx, g.wsURL("/v1/stream?"+q+"&access_token="+tok), nil)
		if err == nil {
			conn.CloseNow()
			t.Fatalf("%s: the upgrade was accepted", q)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: dial = %v, want 403", q, err)
		}
		resp2, body := g.do(t, http.MethodGet, "/v1/stream?"+q, "", nil, "Accept", "text/event-stream", "Authorization", "Bearer "+tok)
		wantProblem(t, resp2, body, http.StatusForbidden, "forbidden")
	}
	// An inside pattern narrows the stream.
	narrow := g.dialStream(t, "/v1/stream?types=user.42.deleted&after=0&access_token="+tok, nil)
	narrow.hello()
	wantSeqs(t, narrow.events(1), last, last)
}

// TestTokenExpiryClosesStreams: when the token expires, its WebSocket is
// closed with 1008 "token expired; last seq N" and its SSE stream ends
// with an error event saying so.
func TestTokenExpiryClosesStreams(t *testing.T) {
	g := startGateway(t, withTokens)
	// exp has one-second precision: two seconds from now, at most.
	exp := time.Now().Add(2 * time.Second)
	tok := hs256(t, scope("user-42", []string{"user.42.>"}, nil, false, exp))
	ws := g.dialStream(t, "/v1/stream?access_token="+tok, nil)
	sse := g.openSSE(t, "/v1/stream", "Authorization", "Bearer "+tok)
	ws.hello()
	if m, err := sse.next(); err != nil || m.Event != "hello" {
		t.Fatalf("sse hello = %+v, %v", m, err)
	}
	last := g.publishN(t, "user.42.created", 3, "")
	wantSeqs(t, ws.events(3), 1, last)

	ce, rest := ws.closeStatus() // each read is bounded (10s)
	if want := "token expired; last seq " + itoa(last); ce.Code != websocket.StatusPolicyViolation || ce.Reason != want || len(rest) != 0 {
		t.Fatalf("close = %d %q after %v, want 1008 %q", ce.Code, ce.Reason, rest, want)
	}
	var msgs []sseMessage
	for {
		m, err := sse.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) != 4 || msgs[3].Event != "error" {
		t.Fatalf("sse got %+v, want 3 events then an error event", msgs)
	}
	var e struct{ Error, Detail string }
	if err := json.Unmarshal([]byte(msgs[3].Data), &e); err != nil || e.Error != "token_expired" || e.Detail != "token expired; last seq "+itoa(last) {
		t.Fatalf("error event data = %s (%v)", msgs[3].Data, err)
	}
}

// TestTokenMint: POST /v1/tokens signs a token the gateway then accepts,
// with the scope asked for, within --token-max-ttl.
func TestTokenMint(t *testing.T) {
	g := startGateway(t, func(o *options) { withTokens(o); o.API.TokenMaxTTL = time.Hour })
	g.publishN(t, "user.42.created", 1, "")
	g.publishN(t, "user.43.created", 1, "")
	mint := func(cred, body string) (*http.Response, []byte) {
		return g.do(t, http.MethodPost, "/v1/tokens", "application/json", []byte(body), bearer(cred)...)
	}
	resp, body := mint(testKey, `{"subscribe":["user.42.>"],"publish":["chat.42.*"],"ttl":"15m","sub":"user-42"}`)
	wantStatus(t, resp, body, http.StatusOK)
	out := decode[struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}](t, body)
	if d := time.Until(out.ExpiresAt); d < 14*time.Minute || d > 16*time.Minute {
		t.Fatalf("expires_at = %v, want about 15m from now", out.ExpiresAt)
	}
	resp, body = g.getAs(t, out.Token, "/v1/events")
	wantStatus(t, resp, body, http.StatusOK)
	if got := replayTypes(t, body); !slices.Equal(got, []string{"user.42.created"}) {
		t.Fatalf("minted token replayed %v", got)
	}
	resp, body = g.postAs(t, out.Token, `{"type":"chat.42.x","data":1}`)
	wantStatus(t, resp, body, http.StatusAccepted)
	resp, body = mint(out.Token, `{"subscribe":[">"]}`)
	wantProblem(t, resp, body, http.StatusForbidden, "forbidden")

	// An admin token may mint.
	resp, body = mint(testKey, `{"admin":true,"ttl":"1m"}`)
	wantStatus(t, resp, body, http.StatusOK)
	adminTok := decode[struct{ Token string }](t, body)
	resp, body = mint(adminTok.Token, `{"subscribe":["a.>"],"ttl":"1h"}`)
	wantStatus(t, resp, body, http.StatusOK)
	// It mints none that outlives it: asked for an hour, it gets its own minute.
	if got := decode[struct {
		ExpiresAt time.Time `json:"expires_at"`
	}](t, body).ExpiresAt; got.After(time.Now().Add(61 * time.Second)) {
		t.Errorf("a token minted by a 1m admin token expires at %s, after the minting token", got)
	}

	for body, field := range map[string]string{
		`{"ttl":"2h"}`:                               "/ttl",
		`{"ttl":"-1m"}`:                              "/ttl",
		`{"ttl":"soon"}`:                             "/ttl",
		`{"subscribe":["user..x"]}`:                  "/subscribe/0",
		`{"publish":["a",">.a"]}`:                    "/publish/1",
		`{"subscribe":["a"],"x":1}`:                  "x",
		`{"sub":"` + strings.Repeat("u", 300) + `"}`: "/sub",
	} {
		resp, b := mint(testKey, body)
		p := wantProblem(t, resp, b, http.StatusUnprocessableEntity, "validation-error")
		if !slices.ContainsFunc(p.fields(), func(f string) bool { return strings.HasSuffix(f, field) }) {
			t.Errorf("%s: fields %v, want %s", body, p.fields(), field)
		}
	}

	// No secret (a public key only, or none): nothing to sign with.
	plain := startGateway(t, func(o *options) { o.API.Keys = []string{testKey} })
	resp, body = plain.do(t, http.MethodPost, "/v1/tokens", "application/json", []byte(`{}`), bearer(testKey)...)
	wantProblem(t, resp, body, http.StatusConflict, "conflict")
}
