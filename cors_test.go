package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestCORSOriginsFlagAndEnv(t *testing.T) {
	c, err := parseConfig(nil, env("GATEWAY_CORS_ORIGINS", "https://app.example.com, https://*.example.org"), io.Discard)
	if err != nil || strings.Join(c.CORSOrigins, " ") != "https://app.example.com https://*.example.org" {
		t.Fatalf("origins from env = %q, %v", c.CORSOrigins, err)
	}
	c, err = parseConfig([]string{"--cors-origins", "http://localhost:3000", "--cors-origins", "https://a.test"},
		env("GATEWAY_CORS_ORIGINS", "https://ignored.example"), io.Discard)
	if err != nil || strings.Join(c.CORSOrigins, " ") != "http://localhost:3000 https://a.test" {
		t.Fatalf("origins from flags = %q, %v (flags must win over env)", c.CORSOrigins, err)
	}
}

// A malformed origin stops the gateway at start, naming the entry and why.
func TestCORSOriginsRefusedAtStart(t *testing.T) {
	for bad, why := range map[string]string{
		"*":                            "any origin",
		"null":                         "sandboxed",
		"app.example.com":              "scheme://host",
		"https://app.example.com/":     "no path",
		"https://app.example.com/x":    "no path",
		"https://a.*.example.com":      "wildcard",
		"https://*.com":                "two labels",
		"https://app.example.com:0":    "port",
		"https://user@app.example.com": "no path, query, fragment or user",
	} {
		_, err := parseConfig([]string{"--cors-origins", "https://ok.example," + bad}, env(), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--cors-origins") || !strings.Contains(err.Error(), bad) ||
			!strings.Contains(err.Error(), why) {
			t.Errorf("--cors-origins %q: err = %v, want it named, with %q", bad, err, why)
		}
		if err := run(t.Context(), []string{"--addr", "127.0.0.1:0", "--cors-origins", bad}, env(), io.Discard); err == nil {
			t.Errorf("run with --cors-origins %q started", bad)
		}
	}
}

// The built gateway answers a preflight from a listed origin and refuses
// another origin with a problem document.
func TestCORSOriginsEndToEnd(t *testing.T) {
	base, _, stop := startRun(t, "--api-key", "k1", "--cors-origins", "https://app.example.com")
	defer func() { _ = stop() }()

	req, _ := http.NewRequest(http.MethodOptions, base+"/v1/events", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Fatalf("preflight = %d %v", resp.StatusCode, resp.Header)
	}

	req, _ = http.NewRequest(http.MethodGet, base+"/v1/events", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Authorization", "Bearer k1")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), "origin-not-allowed") {
		t.Fatalf("other origin = %d %s", resp.StatusCode, body)
	}
}
