package signature_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// signedRequest builds a request as the gateway sends it, signed now.
func signedRequest(tb testing.TB, secrets []signature.Secret, body string) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	signature.SetHeaders(r.Header, secrets, "evt_01JDQ8X3Y0ZK2N5T7W9A", time.Now(), []byte(body))
	return r
}

// echo answers 200 with the body it reads, to show it was restored.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
})

func TestVerifierMiddleware(t *testing.T) {
	oldS, newS := mustParse(t, specSecret), mustParse(t, otherSecret)
	stranger := mustParse(t, signature.NewSecret())
	const body = `{"seq":1,"type":"order.created"}`
	big := strings.Repeat("x", 100)

	tests := []struct {
		name       string
		req        func(t *testing.T) *http.Request
		wantStatus int
		wantBody   string
	}{
		{"signed with current secret", func(t *testing.T) *http.Request {
			return signedRequest(t, []signature.Secret{newS}, body)
		}, http.StatusOK, body},
		{"signed with both during rotation", func(t *testing.T) *http.Request {
			return signedRequest(t, []signature.Secret{newS, oldS}, body)
		}, http.StatusOK, body},
		{"signed with a stranger's secret", func(t *testing.T) *http.Request {
			return signedRequest(t, []signature.Secret{stranger}, body)
		}, http.StatusBadRequest, signature.ErrNoMatchingSignature.Error() + "\n"},
		{"body changed in transit", func(t *testing.T) *http.Request {
			r := signedRequest(t, []signature.Secret{newS}, body)
			r.Body = io.NopCloser(strings.NewReader(body + " "))
			return r
		}, http.StatusBadRequest, signature.ErrNoMatchingSignature.Error() + "\n"},
		{"unsigned", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
		}, http.StatusBadRequest, signature.ErrMissingHeaders.Error() + "\n"},
		{"body over the limit", func(t *testing.T) *http.Request {
			return signedRequest(t, []signature.Secret{newS}, big+"x")
		}, http.StatusRequestEntityTooLarge, "Request Entity Too Large\n"},
		{"body at the limit", func(t *testing.T) *http.Request {
			return signedRequest(t, []signature.Secret{newS}, big)
		}, http.StatusOK, big},
	}
	v := &signature.Verifier{Secrets: []signature.Secret{newS, oldS}, MaxBodyBytes: int64(len(big))}
	h := v.Middleware(echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req(t))
			if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestVerifierMiddlewareCopiesConfig(t *testing.T) {
	s := mustParse(t, otherSecret)
	v := &signature.Verifier{Secrets: []signature.Secret{s}}
	h := v.Middleware(echo)
	v.Secrets[0] = signature.Secret{} // a later change must not affect h
	w := httptest.NewRecorder()
	h.ServeHTTP(w, signedRequest(t, []signature.Secret{s}, "{}"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", w.Code)
	}
}

func TestVerifierMiddlewarePanicsWithoutSecrets(t *testing.T) {
	for _, v := range []*signature.Verifier{{}, {Secrets: []signature.Secret{{}}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Middleware with secrets %v did not panic", v.Secrets)
				}
			}()
			v.Middleware(echo)
		}()
	}
}

func TestVerifyRequest(t *testing.T) {
	s := mustParse(t, otherSecret)
	v := &signature.Verifier{Secrets: []signature.Secret{s}, MaxBodyBytes: 8}

	r := signedRequest(t, []signature.Secret{s}, "{}")
	body, err := v.VerifyRequest(r)
	if err != nil || string(body) != "{}" {
		t.Fatalf("VerifyRequest = %q, %v", body, err)
	}
	again, _ := io.ReadAll(r.Body)
	if string(again) != "{}" {
		t.Fatalf("body after VerifyRequest = %q, want it restored", again)
	}

	r = signedRequest(t, []signature.Secret{s}, "123456789")
	_, err = v.VerifyRequest(r)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) || tooBig.Limit != 8 {
		t.Fatalf("VerifyRequest over the limit = %v, want *http.MaxBytesError{8}", err)
	}

	// A failed verification still restores the body, e.g. for logging.
	r = signedRequest(t, []signature.Secret{mustParse(t, specSecret)}, "{}")
	if _, err := v.VerifyRequest(r); !errors.Is(err, signature.ErrNoMatchingSignature) {
		t.Fatalf("VerifyRequest with a wrong secret = %v", err)
	}
	if again, _ := io.ReadAll(r.Body); string(again) != "{}" {
		t.Fatalf("body after failed VerifyRequest = %q, want it restored", again)
	}

	// No body at all is an empty body, and it is signed as such.
	r = httptest.NewRequest(http.MethodPost, "/hooks", nil)
	signature.SetHeaders(r.Header, []signature.Secret{s}, "evt_1", time.Now(), nil)
	if _, err := v.VerifyRequest(r); err != nil {
		t.Fatalf("VerifyRequest without a body = %v", err)
	}
}

// TestVerifierClock uses synctest's fake clock to cross the tolerance.
func TestVerifierClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustParse(t, otherSecret)
		h := (&signature.Verifier{Secrets: []signature.Secret{s}}).Middleware(echo)
		send := func(r *http.Request) int {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}

		early := signedRequest(t, []signature.Secret{s}, "{}")
		late := signedRequest(t, []signature.Secret{s}, "{}")
		time.Sleep(signature.DefaultTolerance)
		if got := send(early); got != http.StatusOK {
			t.Fatalf("exactly DefaultTolerance old: status %d, want 200", got)
		}
		time.Sleep(time.Second)
		if got := send(late); got != http.StatusBadRequest {
			t.Fatalf("past DefaultTolerance: status %d, want 400", got)
		}

		// A request stamped in the future, as from a sender whose clock runs ahead.
		ahead := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader("{}"))
		signature.SetHeaders(ahead.Header, []signature.Secret{s}, "evt_2", time.Now().Add(signature.DefaultTolerance+time.Second), []byte("{}"))
		if got := send(ahead); got != http.StatusBadRequest {
			t.Fatalf("future timestamp: status %d, want 400", got)
		}
	})
}

// TestVerifierOverHTTP is the receiver as a real server, with the request sent
// by a client the way the gateway sends it.
func TestVerifierOverHTTP(t *testing.T) {
	oldS, newS := mustParse(t, specSecret), mustParse(t, otherSecret)
	got := make(chan string, 1)
	v := &signature.Verifier{Secrets: []signature.Secret{oldS}}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("webhook-id") + " " + string(b)
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	body := []byte(`{"seq":7,"type":"order.created","data":{}}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signature.SetHeaders(req.Header, []signature.Secret{newS, oldS}, "evt_7", time.Now(), body)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	if g, want := <-got, "evt_7 "+string(body); g != want {
		t.Fatalf("handler saw %q, want %q", g, want)
	}
}
