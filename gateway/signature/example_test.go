package signature_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// The gateway signs; a receiver verifies with the secret it was given.
func Example() {
	secret, err := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	sent := time.Unix(1614265330, 0)

	// Sender side: the three headers of one attempt.
	h := http.Header{}
	signature.SetHeaders(h, []signature.Secret{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", sent, body)
	fmt.Println("webhook-signature:", h.Get("webhook-signature"))

	// Receiver side, ten seconds later.
	err = signature.Verify([]signature.Secret{secret}, h, body, sent.Add(10*time.Second), signature.DefaultTolerance)
	fmt.Println("verified:", err == nil)

	// Ten minutes later the same request is refused as a possible replay.
	err = signature.Verify([]signature.Secret{secret}, h, body, sent.Add(10*time.Minute), signature.DefaultTolerance)
	fmt.Println(err)
	// Output:
	// webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// verified: true
	// signature: webhook-timestamp too old
}

// A receiver puts the Verifier in front of its handler; the handler sees only
// verified requests, with the body still readable.
func ExampleVerifier_Middleware() {
	secret, err := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	v := &signature.Verifier{Secrets: []signature.Secret{secret}}
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/eventgate", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// De-duplicate on r.Header.Get("webhook-id"), then handle the event.
		w.WriteHeader(http.StatusNoContent)
	})))

	body := `{"seq":1,"type":"order.created","data":{}}`
	for _, s := range []signature.Secret{secret, {}} {
		r := httptest.NewRequest(http.MethodPost, "/hooks/eventgate", strings.NewReader(body))
		signature.SetHeaders(r.Header, []signature.Secret{s}, "evt_1", time.Now(), []byte(body))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 204
	// 400
}
