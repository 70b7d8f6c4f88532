package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchEvent is the event every mode sends (the same as api's
// BenchmarkIngest), about 170 bytes.
const benchEvent = `{"type":"order.created","source":"/shop","subject":"order/981","data":{"order":981,"customer":"c_2Jx8hHk2mN","items":[{"sku":"sku-123","qty":2}],"total":3998}}`

// ingestBody returns a request body of n events (n == 1: one object).
func ingestBody(n int) []byte {
	if n <= 1 {
		return []byte(benchEvent)
	}
	return []byte("[" + strings.TrimSuffix(strings.Repeat(benchEvent+",", n), ",") + "]")
}

// ingestConfig drives the ingest mode.
type ingestConfig struct {
	clients  int
	batch    int
	duration time.Duration
	maxReqs  int  // 0: bounded by duration only
	netHTTP  bool // use net/http's client instead of rawConn
}

// ingestResult is what one ingest run measured.
type ingestResult struct {
	events, reqs   float64 // per second
	p50, p99, p999 time.Duration
	statuses       map[string]int // "202", "503", "error: …"
	clientCPU      string         // cores used by this tool
	serverCPU      string         // cores used by the spawned server, "-" when unknown
	clientPerReq   string         // µs of this tool's CPU per request
	serverPerEvent string         // µs of the server's CPU per event accepted
}

func (r ingestResult) String() string {
	var codes []string
	for k, v := range r.statuses {
		codes = append(codes, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%9.0f events/s %8.0f req/s  p50 %6s p99 %6s p999 %6s ms  cores client %s server %s  cpu µs client/req %s server/event %s  [%s]",
		r.events, r.reqs, ms(r.p50), ms(r.p99), ms(r.p999), r.clientCPU, r.serverCPU, r.clientPerReq, r.serverPerEvent, strings.Join(codes, " "))
}

// newClient returns an HTTP client keeping n connections alive to one
// host, with no compression and a deadline on every request.
func newClient(n int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			MaxConnsPerHost:     n,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// runIngest posts events from cfg.clients keep-alive clients for
// cfg.duration and measures what the server accepts.
func runIngest(ctx context.Context, s *server, cfg ingestConfig) (ingestResult, error) {
	body := ingestBody(cfg.batch)
	client := newClient(cfg.clients)
	defer client.CloseIdleConnections()
	url := s.url + "/v1/events"

	// One request first: a wrong URL fails fast and the connection warms.
	code, err := post(ctx, client, url, body)
	if err != nil || code/100 != 2 {
		return ingestResult{}, fmt.Errorf("first request: status %d: %w", code, err)
	}

	type worker struct {
		h        hist
		statuses map[string]int
	}
	workers := make([]*worker, cfg.clients)
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var budget chan struct{} // nil: unbounded
	if cfg.maxReqs > 0 {
		budget = make(chan struct{}, cfg.maxReqs)
		for range cfg.maxReqs {
			budget <- struct{}{}
		}
		close(budget)
	}
	cpu0, scpu0 := selfCPU(), s.cpu()
	start := time.Now()
	end := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{statuses: map[string]int{}}
		workers[i] = w
		var rc *rawConn
		if !cfg.netHTTP {
			if rc, err = newRawConn(url, body); err != nil {
				return ingestResult{}, err
			}
		}
		wg.Go(func() {
			if rc != nil {
				defer rc.close()
			}
			for ctx.Err() == nil {
				if budget != nil {
					if _, ok := <-budget; !ok {
						return
					}
				}
				t0 := time.Now()
				var code int
				var err error
				if rc != nil {
					dl := t0.Add(30 * time.Second)
					if end.Before(dl) {
						dl = end
					}
					code, err = rc.do(ctx, dl)
				} else {
					code, err = post(ctx, client, url, body)
				}
				if ctx.Err() != nil || time.Now().After(end) {
					return // cut off by the end of the run: not counted
				}
				w.h.add(time.Since(t0))
				if err != nil {
					w.statuses["error"]++
				} else {
					w.statuses[strconv.Itoa(code)]++
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu, scpu := selfCPU()-cpu0, s.cpu()-scpu0

	var h hist
	r := ingestResult{statuses: map[string]int{}, clientCPU: cpuShare(cpu, wall), serverCPU: "-"}
	if s.pid > 0 {
		r.serverCPU = cpuShare(scpu, wall)
	}
	ok := 0
	for _, w := range workers {
		h.merge(&w.h)
		for k, v := range w.statuses {
			r.statuses[k] += v
			if k[0] == '2' {
				ok += v
			}
		}
	}
	r.reqs = float64(h.n) / wall.Seconds()
	r.events = float64(ok*max(cfg.batch, 1)) / wall.Seconds()
	r.p50, r.p99, r.p999 = h.pct(0.50), h.pct(0.99), h.pct(0.999)
	r.clientPerReq = perUnit(cpu, float64(h.n))
	r.serverPerEvent = "-"
	if s.pid > 0 {
		r.serverPerEvent = perUnit(scpu, float64(ok*max(cfg.batch, 1)))
	}
	return r, nil
}

// post sends one JSON body and drains the answer, so the connection is
// reused.
func post(ctx context.Context, client *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
