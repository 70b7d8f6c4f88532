package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/natsjs/natsembed"
	"github.com/nats-io/nats.go"
)

// startCluster starts a three-node JetStream cluster on 127.0.0.1 and
// shuts it down at cleanup.
func startCluster(t *testing.T) [3]*natsembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := natsembed.StartCluster(ctx, "scale", []string{t.TempDir(), t.TempDir(), t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srv {
		t.Cleanup(s.Shutdown)
	}
	return [3]*natsembed.Server(srv)
}

// dial connects over TCP to s (other servers of the cluster listed too,
// for reconnection), closed at cleanup.
func dial(t *testing.T, s *natsembed.Server, others ...*natsembed.Server) *nats.Conn {
	t.Helper()
	url := s.ClientURL()
	for _, o := range others {
		url += "," + o.ClientURL()
	}
	nc, err := nats.Connect(url, nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// sharedStore opens the replicated stream and bucket once, retrying while
// the cluster elects leaders (separate servers: poll, with a deadline),
// and returns the store description gateways share.
func sharedStore(t *testing.T, nc *nats.Conn) natsStore {
	t.Helper()
	st := natsStore{Conn: nc, Stream: "SCALE", Replicas: 3}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := natsjs.Open(ctx, natsjs.Config{Conn: nc, Stream: st.Stream, Prefix: "scale", Replicas: 3, MaxMsgs: 10_000})
		if err == nil {
			_, err = l.OpenWebhooks(ctx)
			_ = l.Close()
		}
		cancel()
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("open the replicated stream: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // across servers: poll
	}
}

// tagged is a test transport that names the gateway in every delivery
// (X-Gateway), so a receiver can tell which gateway attempted it.
type tagged struct {
	name string
	next http.RoundTripper
}

func (tg tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Gateway", tg.name)
	return tg.next.RoundTrip(r)
}

// scaleGateway starts a gateway named name on st over its own connection.
func scaleGateway(t *testing.T, name string, st natsStore, nc *nats.Conn) *testGateway {
	t.Helper()
	st.Conn = nc
	return startGateway(t, func(o *options) {
		o.Capacity = 10_000
		o.NATS = &st
		o.Disp.Timeout = 2 * time.Second // AckWait 3s: a dead gateway's deliveries move on quickly
		o.Disp.Schedule = []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
		o.Disp.Transport = tagged{name: name, next: &http.Transport{}}
	})
}

// postEventually posts one event, retrying on 503 while a leader is
// elected, and returns its seq.
func postEventually(t *testing.T, g *testGateway, typ string) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := g.postJSON(t, "/v1/events", map[string]any{"type": typ, "data": map[string]any{"n": 1}})
		if resp.StatusCode == http.StatusAccepted {
			return decode[appended](t, b).Seq
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST on %s = %d %s", g.URL, resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond) // across servers: poll
	}
}

// seqOf reads the seq out of a delivered body.
func seqOf(t *testing.T, body []byte) uint64 {
	t.Helper()
	return decode[struct {
		Seq uint64 `json:"seq"`
	}](t, body).Seq
}

// TestScaleOutThreeNodes runs gateways on a three-node JetStream cluster:
// an event posted on A is read on B and reaches a WebSocket client on B
// (and one resuming on A with after); a webhook registered on B is
// delivered once per event while A and B both pull its queue; a gateway
// killed in the middle of deliveries loses none (the other finishes
// them); with one node of three stopped, ingest and deliveries go on.
func TestScaleOutThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	srv := startCluster(t)
	st := sharedStore(t, dial(t, srv[0]))
	a := scaleGateway(t, "A", st, dial(t, srv[0], srv[2]))
	b := scaleGateway(t, "B", st, dial(t, srv[2], srv[0]))

	// An event posted on A is readable on B (same log, same seq).
	seq := postEventually(t, a, "order.created")
	eventually(t, 10*time.Second, "B to read the event posted on A", func() bool {
		resp, body := b.do(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=10", seq-1), "", nil)
		p := decode[replayPage](t, body)
		return resp.StatusCode == http.StatusOK && len(p.Events) == 1 && p.Events[0].Seq == seq && p.Events[0].Type == "order.created"
	})

	// An event posted on A reaches a WebSocket client on B; a client on
	// A resuming with after gets it too (the same seq on every gateway).
	ws := b.dialStream(t, "/v1/stream?types=ws.*", nil)
	ws.hello()
	wseq := postEventually(t, a, "ws.event")
	if l := ws.next(); l.Seq != wseq {
		t.Fatalf("B's stream sent %s, want seq %d", l, wseq)
	}
	resumed := a.dialStream(t, fmt.Sprintf("/v1/stream?types=ws.*&after=%d", wseq-1), nil)
	resumed.hello()
	if l := resumed.next(); l.Seq != wseq {
		t.Fatalf("A's resumed stream sent %s, want seq %d", l, wseq)
	}

	// A webhook registered on B, delivered from both gateways: once per
	// event.
	var mu sync.Mutex
	count := map[uint64]int{}
	by := map[string]int{}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {})
	h := b.createHook(t, map[string]any{"url": rc.URL, "types": []string{"shop.>"}})
	eventually(t, 5*time.Second, "A to learn of the webhook registered on B", func() bool {
		resp, _ := a.do(t, http.MethodGet, "/v1/webhooks/"+h.ID, "", nil)
		return resp.StatusCode == http.StatusOK
	})
	const n = 40
	want := map[uint64]bool{}
	for i := range n {
		g := a
		if i%2 == 1 {
			g = b
		}
		want[postEventually(t, g, "shop.order")] = true
	}
	collect := func(deadline time.Duration, done func() bool) {
		t.Helper()
		timeout := time.After(deadline)
		for !done() {
			select {
			case r := <-rc.got:
				mu.Lock()
				count[seqOf(t, r.Body)]++
				by[r.Header.Get("X-Gateway")]++
				mu.Unlock()
			case <-timeout:
				t.Fatalf("deliveries: %d of %d events; by gateway %v", len(count), len(want), by)
			}
		}
	}
	collect(30*time.Second, func() bool { return len(count) == len(want) })
	for s := range want {
		if count[s] != 1 {
			t.Fatalf("event %d delivered %d times", s, count[s])
		}
	}
	t.Logf("%d events delivered once each; attempts by gateway: %v", n, by)
	// Either gateway may fetch first; both share the queue (a quiet
	// gateway is not an error, but report it).
	if by["A"] == 0 || by["B"] == 0 {
		t.Logf("one gateway took every delivery: %v", by)
	}
	// The shared delivery log: A shows what B delivered, and the reverse.
	for s := range want {
		a.waitDelivery(t, h.ID, s, "succeeded")
		break
	}

	// Kill: gateway K hangs on every attempt it makes (its receiver never
	// answers K); K's NATS connection is cut (nothing settled), then its
	// dispatcher stops. After AckWait the queue hands K's deliveries to A.
	kconn := dial(t, srv[1], srv[0])
	k := scaleGateway(t, "K", st, kconn)
	rk := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Gateway") == "K" {
			<-r.Context().Done() // K never gets an answer
		}
	})
	hk := b.createHook(t, map[string]any{"url": rk.URL, "types": []string{"kill.>"}})
	eventually(t, 5*time.Second, "K to learn of the webhook", func() bool {
		resp, _ := k.do(t, http.MethodGet, "/v1/webhooks/"+hk.ID, "", nil)
		return resp.StatusCode == http.StatusOK
	})
	gotK := map[uint64]int{}
	delivered := map[uint64]string{}
	var kseqs []uint64
	deadline := time.After(30 * time.Second)
	for len(gotK) == 0 { // post until K holds at least one delivery
		kseqs = append(kseqs, postEventually(t, a, "kill.me"))
		for drained := false; !drained; {
			select {
			case r := <-rk.got:
				s := seqOf(t, r.Body)
				if r.Header.Get("X-Gateway") == "K" {
					gotK[s]++
				} else {
					delivered[s] = r.Header.Get("X-Gateway")
				}
			case <-time.After(300 * time.Millisecond):
				drained = true
			case <-deadline:
				t.Fatal("K never took a delivery")
			}
		}
	}
	kconn.Close() // a crash: nothing acked, nothing handed back
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_ = k.Disp.Shutdown(gone) // no drain: attempts cancelled at once, and settling them fails
	timeout := time.After(30 * time.Second)
	for len(delivered) < len(kseqs) {
		select {
		case r := <-rk.got:
			if gw := r.Header.Get("X-Gateway"); gw != "K" {
				if prev, dup := delivered[seqOf(t, r.Body)]; dup {
					t.Fatalf("event %d delivered twice (%s, then %s)", seqOf(t, r.Body), prev, gw)
				}
				delivered[seqOf(t, r.Body)] = gw
			}
		case <-timeout:
			t.Fatalf("after the kill: %d of %d delivered (K held %v)", len(delivered), len(kseqs), gotK)
		}
	}
	for s := range gotK {
		if delivered[s] == "" {
			t.Fatalf("event %d held by K was not finished by another gateway", s)
		}
	}
	t.Logf("kill: K held %d deliveries; all %d events delivered by the others", len(gotK), len(kseqs))

	// One node of three stops (n1: neither A's nor B's server); ingest
	// and deliveries go on.
	srv[1].Shutdown()
	more := map[uint64]bool{}
	for range 10 {
		more[postEventually(t, a, "shop.order")] = true
	}
	collect(30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for s := range more {
			if count[s] == 0 {
				return false
			}
		}
		return true
	})
	for s := range more {
		if count[s] != 1 {
			t.Fatalf("after the node stop, event %d delivered %d times", s, count[s])
		}
	}
}
