package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The token flags and their env twins: a PEM public key is read and
// checked at start, a short secret refused; run wires them into the API.
func TestTokenFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, env(), &out); !errors.Is(err, errHelp) {
		t.Fatalf("run --help = %v", err)
	}
	for _, f := range [][2]string{{"token-secret", "GATEWAY_TOKEN_SECRET"}, {"token-public-key", "GATEWAY_TOKEN_PUBLIC_KEY"}, {"token-max-ttl", "GATEWAY_TOKEN_MAX_TTL"}} {
		if !strings.Contains(out.String(), "--"+f[0]+" ") || !strings.Contains(out.String(), "["+f[1]+"]") {
			t.Errorf("--help lacks --%s or [%s]", f[0], f[1])
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	file := filepath.Join(t.TempDir(), "backend.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(nil, env("GATEWAY_TOKEN_PUBLIC_KEY", file, "GATEWAY_TOKEN_MAX_TTL", "1h"), io.Discard)
	if err != nil || c.TokenPublicKey == nil || c.TokenMaxTTL != time.Hour {
		t.Fatalf("from env: %+v, %v", c, err)
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	_ = os.WriteFile(junk, []byte("not a key"), 0o600)
	for _, bad := range [][]string{{"--token-secret", "short"}, {"--token-public-key", junk}, {"--token-public-key", junk + ".missing"}, {"--token-max-ttl", "-1s"}} {
		if _, err := parseConfig(bad, env(), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}

	base, _, _ := startRun(t, "--token-public-key", file)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "eventgate": map[string]any{"subscribe": []string{"a.>"}},
	}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	for cred, want := range map[string]int{"": http.StatusUnauthorized, tok: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/events", nil)
		if cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("with a token %v: %d, want %d", cred != "", resp.StatusCode, want)
		}
	}
}
