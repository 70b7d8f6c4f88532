package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventgate/eventgate/gateway/signature"
)

// webhookConfig drives the webhook mode.
type webhookConfig struct {
	receivers int
	rate      int           // events/s; 0: publish events as fast as possible
	events    int           // with rate 0, how many
	duration  time.Duration // with a rate, how long
	grace     time.Duration // how long deliveries may take after publishing
	// backlog, when positive, measures draining instead: the webhooks are
	// created disabled, backlog events are published, and the clock starts
	// when they are enabled again (resume from their cursor).
	backlog int
	// publishers post concurrently when publishing flat out (--events,
	// --backlog); 0 means 1.
	publishers int
}

// webhookResult is what one webhook run measured.
type webhookResult struct {
	published       int
	pubPerSec       float64 // events/s accepted while publishing
	backlog         bool    // deliveries/s are of draining a backlog
	ingestOnly      bool    // --receivers 0: no webhook; the figures are per event ingested
	deliveries      int
	perSec          float64 // deliveries/s, first publish to last delivery
	p50, p99        time.Duration
	dup, missing    int
	badSig          int
	serverCPUPerDel time.Duration // server CPU per delivery, 0 when unknown
	clientCPU       string
	serverCPU       string
}

func (r webhookResult) String() string {
	per := "-"
	if r.serverCPUPerDel > 0 {
		per = fmt.Sprintf("%.0f µs", float64(r.serverCPUPerDel)/1e3)
	}
	if r.ingestOnly {
		return fmt.Sprintf("published %d (%.0f/s)  no webhook  server cpu/event %s  cpu client %s server %s",
			r.published, r.pubPerSec, per, r.clientCPU, r.serverCPU)
	}
	what, lat := "while ingesting", "ingest-to-delivery"
	if r.backlog {
		what, lat = "draining a backlog", "publish-to-delivery (backlog wait included)"
	}
	return fmt.Sprintf("published %d (%.0f/s)  delivered %d  %9.0f deliveries/s %s  %s p50 %6s ms  p99 %6s ms  dup %d missing %d bad-signature %d  server cpu/delivery %s  cpu client %s server %s",
		r.published, r.pubPerSec, r.deliveries, r.perSec, what, lat, ms(r.p50), ms(r.p99), r.dup, r.missing, r.badSig, per, r.clientCPU, r.serverCPU)
}

// receiver is a local webhook endpoint: it verifies every signature and
// records each webhook-id it is sent and the time since the event left the
// publisher.
type receiver struct {
	srv     *http.Server
	url     string
	secrets []signature.Secret
	mu      sync.Mutex
	seen    map[string]int // webhook-id → deliveries
	n       int
	badSig  int
	last    time.Time
	h       hist
	closed  chan error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	err = signature.Verify(rc.secrets, r.Header, body, now, 0) // secrets are set before any delivery
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.badSig++
		w.WriteHeader(http.StatusUnauthorized) // retried, so it is counted again
		return
	}
	rc.seen[r.Header.Get(signature.HeaderID)]++
	rc.n++
	rc.last = now
	if t, ok := fieldUint(body, keyT, false); ok {
		rc.h.add(now.Sub(time.Unix(0, int64(t))))
	}
	w.WriteHeader(http.StatusNoContent)
}

// startReceiver listens on a free loopback port.
func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String() + "/hook", seen: map[string]int{}, closed: make(chan error, 1)}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() { rc.closed <- rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) close() {
	_ = rc.srv.Close()
	<-rc.closed
}

// unique returns how many distinct webhook-ids arrived.
func (rc *receiver) unique() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// register creates a webhook for rc on the server (types bench.webhook),
// enabled or not, and returns its id; the secret goes to rc.
func register(ctx context.Context, client *http.Client, base string, rc *receiver, enabled bool) (string, error) {
	body, _ := json.Marshal(map[string]any{"url": rc.url, "types": []string{"bench.webhook"}, "description": "bench/load", "enabled": enabled})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/webhooks", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ ID, Secret string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("register webhook: status %d: %.300s (does the server run with --allow-private-targets?)", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", err
	}
	sec, err := signature.ParseSecret(out.Secret)
	if err != nil {
		return "", err
	}
	rc.secrets = []signature.Secret{sec}
	return out.ID, nil
}

// enable enables webhook id again; it resumes from its cursor, so the
// events published while it was disabled are delivered.
func enable(ctx context.Context, client *http.Client, base, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, base+"/v1/webhooks/"+id, bytes.NewReader([]byte(`{"enabled":true}`)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("enable webhook: status %d: %.300s", resp.StatusCode, b)
	}
	return nil
}

// unregister deletes webhook id.
func unregister(client *http.Client, base, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/v1/webhooks/"+id, nil)
	if err != nil {
		return
	}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// runWebhook registers cfg.receivers webhooks to local receivers,
// publishes and waits until every receiver has every event (or the grace
// time ends). With no receivers it measures the ingest alone: the server's
// CPU per event published, which every delivery's figure includes. Deliveries/s run from the first publish to the last
// delivery; with cfg.backlog, from enabling the webhooks after publishing
// the backlog to the last delivery.
func runWebhook(ctx context.Context, s *server, cfg webhookConfig) (webhookResult, error) {
	var res webhookResult
	client := newClient(max(cfg.publishers, 1) + 4)
	defer client.CloseIdleConnections()
	var rcs []*receiver
	var ids []string
	defer func() {
		for _, rc := range rcs {
			rc.close()
		}
	}()
	for range cfg.receivers {
		rc, err := startReceiver()
		if err != nil {
			return res, err
		}
		rcs = append(rcs, rc)
		id, err := register(ctx, client, s.url, rc, cfg.backlog <= 0)
		if err != nil {
			return res, err
		}
		ids = append(ids, id)
		defer unregister(client, s.url, id)
	}

	pub := &httpPublisher{client: client, s: s, typ: "bench.webhook"}
	cpu0, scpu0 := selfCPU(), s.cpu()
	start := time.Now()
	var err error
	switch {
	case cfg.backlog > 0:
		res.backlog = true
		res.published, err = publishFlatOut(ctx, pub, cfg.backlog, cfg.publishers)
	case cfg.rate > 0:
		res.published, _, err = paced(ctx, pub, cfg.rate, cfg.duration)
	default:
		res.published, err = publishFlatOut(ctx, pub, cfg.events, cfg.publishers)
	}
	if err != nil {
		return res, err
	}
	res.pubPerSec = float64(res.published) / time.Since(start).Seconds()
	if cfg.backlog > 0 {
		start = time.Now()
		cpu0, scpu0 = selfCPU(), s.cpu()
		for _, id := range ids {
			if err := enable(ctx, client, s.url, id); err != nil {
				return res, err
			}
		}
	}
	deadline := time.Now().Add(cfg.grace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, rc := range rcs {
			all = all && rc.unique() >= res.published
		}
		if all {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a count another process drives
	}
	cpu, scpu := selfCPU()-cpu0, s.cpu()-scpu0
	if len(rcs) == 0 { // ingest alone: what a delivery's figures include
		wall := time.Since(start)
		res.ingestOnly, res.perSec = true, float64(res.published)/wall.Seconds()
		res.clientCPU, res.serverCPU = cpuShare(cpu, wall), "-"
		if s.pid > 0 && res.published > 0 {
			res.serverCPU = cpuShare(scpu, wall)
			res.serverCPUPerDel = time.Duration(scpu) / time.Duration(res.published)
		}
		return res, nil
	}

	var h hist
	var last time.Time
	for _, rc := range rcs {
		rc.mu.Lock()
		h.merge(&rc.h)
		res.deliveries += rc.n
		res.badSig += rc.badSig
		res.missing += max(0, res.published-len(rc.seen))
		for _, c := range rc.seen {
			res.dup += c - 1
		}
		if rc.last.After(last) {
			last = rc.last
		}
		rc.mu.Unlock()
	}
	wall := last.Sub(start)
	if res.deliveries == 0 || wall <= 0 {
		return res, errors.New("nothing was delivered")
	}
	res.perSec = float64(res.deliveries) / wall.Seconds()
	res.p50, res.p99 = h.pct(0.50), h.pct(0.99)
	res.clientCPU, res.serverCPU = cpuShare(cpu, wall), "-"
	if s.pid > 0 {
		res.serverCPU = cpuShare(scpu, wall)
		res.serverCPUPerDel = time.Duration(scpu) / time.Duration(res.deliveries)
	}
	return res, nil
}

// publishFlatOut publishes n events in batches of 100 from publishers
// goroutines (at least 1), each posting one request after another, and
// returns how many were accepted; it stops at the first error.
func publishFlatOut(ctx context.Context, pub *httpPublisher, n, publishers int) (int, error) {
	var next, done atomic.Int64 // next: events claimed; done: events accepted
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range max(publishers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int64(100)
				from := next.Add(k) - k
				if from >= int64(n) {
					return
				}
				k = min(k, int64(n)-from)
				if _, err := pub.publish(ctx, int(k), uint64(from)+1); err != nil {
					cancel(err)
					return
				}
				done.Add(k)
			}
		})
	}
	wg.Wait()
	return int(done.Load()), context.Cause(ctx)
}
