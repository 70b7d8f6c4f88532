package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The scaleout command measures groups of eventgate gateways sharing one
// NATS (the eventgate-nats-url target), by default one gateway against
// three, in one run: the groups rotate within each of --runs runs, as
// compare's targets do, and the summary gives medians and the median of
// the per-run ratios of each group to the first.
//
//	load scaleout webhook --nats-url URLS --nats-replicas 3 [--gateways 1,3] [--backlog 20000 | --events 20000] [--publishers 3]
//	load scaleout stream  --nats-url URLS --nats-replicas 3 [--gateways 1,3] --rate 500 --clients 250,500,1000,2000 [--p99 100ms]
//
// webhook is the webhook mode over a group: one receiver (--receivers), the
// webhook created and enabled through the first gateway, publishes spread
// over the gateways in turn, every gateway delivering from the webhook's
// one shared consumer; every event must reach the receiver exactly once
// across the gateways (a run where one is missing or duplicated is
// reported and left out of the medians). stream is the fanout mode at one
// fixed rate with ever more WebSocket subscribers, spread over the
// gateways in turn; a group serves a number of clients when nothing is
// lost, duplicated, reordered or cut and the p99 is under --p99, and the
// ladder stops at the first count it does not serve. A second figure
// counts a run as served when its only failure is subscribers that the
// gateway closed with 1001 while it was not stopping (a NATS-store bug
// found with this tool; the first figure is the strict one). Each run
// reports the cores used by this tool, by each gateway and (with
// --nats-pids) by each NATS server, from the start of the measurement to
// its end.
const scaleoutUsage = `usage: load scaleout webhook|stream --nats-url URLS [--gateways 1,3] [flags]`

// scaleoutFlags are scaleout's own flags, beside the mode's.
type scaleoutFlags struct {
	gateways []int // gateways per group, in order
	clients  []int // stream: subscriber counts tried in turn
	natsPIDs []int // NATS server processes whose CPU is reported
}

// intList parses "1,3" into [1 3], refusing anything but positive
// integers.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseScaleout reads scaleout's command line: the mode (webhook or
// stream), the mode's flags and scaleout's own.
func parseScaleout(args []string, out io.Writer) (string, *options, *scaleoutFlags, error) {
	if len(args) == 0 || (args[0] != "webhook" && args[0] != "stream") {
		fmt.Fprintln(out, scaleoutUsage)
		return "", nil, nil, errors.New("scaleout needs a mode: webhook or stream")
	}
	mode := args[0]
	sf := &scaleoutFlags{}
	var gateways, clients, pids string
	flagMode := map[string]string{"webhook": "webhook", "stream": "fanout"}[mode]
	o, err := parseFlags(flagMode, false, args[1:], out, func(fs *flag.FlagSet) {
		fs.StringVar(&gateways, "gateways", "1,3", "scaleout: gateways per group, the first group the baseline of the ratios")
		fs.StringVar(&pids, "nats-pids", "", "scaleout: pids of the NATS servers (comma-separated), to report their CPU")
		if mode == "stream" {
			fs.StringVar(&clients, "clients", "250,500,1000,2000", "scaleout stream: WebSocket subscriber counts, tried in turn at the one --rate")
		}
	})
	if err != nil {
		return "", nil, nil, err
	}
	kind, _, _ := strings.Cut(o.tf.target, ":")
	switch kind {
	case targetEventgate: // the default of --target: the NATS URL target is meant
		o.tf.target = targetEventgateNATSURL + strings.TrimPrefix(o.tf.target, kind)
	case targetEventgateNATSURL:
	default:
		return "", nil, nil, fmt.Errorf("scaleout measures %s (optionally :BINARY), not %s", targetEventgateNATSURL, o.tf.target)
	}
	if o.tf.url != "" {
		return "", nil, nil, errors.New("scaleout spawns its gateways: --url cannot be used")
	}
	if err := checkNATSURLs(o.tf.natsURL); err != nil {
		return "", nil, nil, err
	}
	if sf.gateways, err = intList(gateways); err != nil {
		return "", nil, nil, fmt.Errorf("--gateways %w", err)
	}
	if pids != "" {
		if sf.natsPIDs, err = intList(pids); err != nil {
			return "", nil, nil, fmt.Errorf("--nats-pids %w", err)
		}
	}
	if mode == "stream" {
		if sf.clients, err = intList(clients); err != nil {
			return "", nil, nil, fmt.Errorf("--clients %w", err)
		}
		if len(o.rates) != 1 {
			return "", nil, nil, errors.New("scaleout stream: give one --rate")
		}
	}
	return mode, o, sf, nil
}

// startGroup spawns n gateways on the NATS of tf, one after another, each
// with the NATS URLs rotated by one so that they connect to different
// servers first. Only the first resets the streams (tf.natsReset) and gets
// tf.debugAddr. The returned server is the first gateway with the others
// as its peers; its stop stops them all (idempotent).
func startGroup(ctx context.Context, tf targetFlags, n int, b *builder) (*server, error) {
	urls := strings.Split(tf.natsURL, ",")
	var members []*server
	stopAll := func() {
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(m.stop)
		}
		wg.Wait()
	}
	for i := range n {
		mtf := tf
		k := i % len(urls)
		mtf.natsURL = strings.Join(append(slices.Clone(urls[k:]), urls[:k]...), ",")
		mtf.natsReset = tf.natsReset && i == 0
		if i > 0 {
			mtf.debugAddr = ""
		}
		s, err := startServer(ctx, mtf, b)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("gateway %d of %d: %w", i+1, n, err)
		}
		members = append(members, s)
	}
	g := *members[0]
	g.peers = members[1:]
	g.stop = sync.OnceFunc(stopAll)
	return &g, nil
}

// cpuSnap is the CPU time of this tool, of each gateway of a group and of
// each NATS server at one moment.
type cpuSnap struct {
	at       time.Time
	self     cpuTime
	gateways []cpuTime
	nats     []cpuTime
}

// snapCPU reads the CPU time of this tool, of every gateway of g and of
// the NATS servers natsPIDs (0 for a process that cannot be read).
func snapCPU(g *server, natsPIDs []int) cpuSnap {
	c := cpuSnap{at: time.Now(), self: selfCPU(), gateways: []cpuTime{procCPU(g.pid)}}
	for _, p := range g.peers {
		c.gateways = append(c.gateways, procCPU(p.pid))
	}
	for _, pid := range natsPIDs {
		c.nats = append(c.nats, procCPU(pid))
	}
	return c
}

// cores says how many cores each process used between a and b: "cores
// tool 0.41 gateways 0.30+0.28 nats 0.35+0.33+0.31 total 1.98".
func cores(a, b cpuSnap) string {
	wall := b.at.Sub(a.at)
	total := b.self - a.self
	list := func(x, y []cpuTime) string {
		f := make([]string, len(x))
		for i := range x {
			total += y[i] - x[i]
			f[i] = cpuShare(y[i]-x[i], wall)
		}
		return strings.Join(f, "+")
	}
	s := "cores tool " + cpuShare(b.self-a.self, wall) + " gateways " + list(a.gateways, b.gateways)
	if len(a.nats) > 0 {
		s += " nats " + list(a.nats, b.nats)
	}
	return s + " total " + cpuShare(total, wall)
}

// groupName names a group of n gateways in the output.
func groupName(n int) string {
	if n == 1 {
		return "1 gateway"
	}
	return strconv.Itoa(n) + " gateways"
}

// scaleout runs the scaleout command (see scaleoutUsage).
func scaleout(ctx context.Context, args []string, out io.Writer) error {
	mode, o, sf, err := parseScaleout(args, out)
	if err != nil {
		return err
	}
	b, done, err := newTempBuilder()
	if err != nil {
		return err
	}
	defer done()

	fmt.Fprintf(out, "# scaleout %s: %s, groups of %v gateway(s) on %s, %d run(s); %d CPUs (GOMAXPROCS %d); load average %s\n",
		mode, o.tf.target, sf.gateways, o.tf.natsURL, o.runs, runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAvg())
	names := []string{"deliveries/s"}
	if mode == "stream" {
		at := " at " + strconv.Itoa(o.rates[0]) + " events/s"
		names = []string{"clients served" + at, "clients served" + at + " but for the subscribers the gateway closed with 1001 (a bug, see above)"}
	}
	figures := make([]map[int][]float64, len(names)) // figure → gateways → per good run
	perRun := make([][]map[int]float64, len(names))  // figure → run → gateways → figure
	for k := range names {
		figures[k], perRun[k] = map[int][]float64{}, make([]map[int]float64, o.runs)
		for r := range o.runs {
			perRun[k][r] = map[int]float64{}
		}
	}
	bad := 0 // measurements that failed or were not exactly once
	for r := range o.runs {
		for i := range sf.gateways {
			n := sf.gateways[(i+r)%len(sf.gateways)]
			g, err := startGroup(ctx, o.tf, n, b)
			if err != nil {
				return err
			}
			figs, ok := scaleoutOne(ctx, mode, g, o, sf, fmt.Sprintf("run %d %-10s", r+1, groupName(n)), out)
			g.stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !ok {
				bad++
				continue
			}
			for k, f := range figs {
				figures[k][n] = append(figures[k][n], f)
				perRun[k][r][n] = f
			}
		}
	}
	for k, name := range names {
		fmt.Fprintf(out, "# medians of %s; load average %s\n", name, loadAvg())
		for _, n := range sf.gateways {
			if fs := figures[k][n]; len(fs) > 0 {
				fmt.Fprintf(out, "median %-10s %10.0f  (%s)\n", groupName(n), median(fs), join(fs))
			}
		}
		first := sf.gateways[0]
		for _, n := range sf.gateways[1:] {
			var ratios []float64
			for _, pr := range perRun[k] {
				if a, b := pr[n], pr[first]; a > 0 && b > 0 {
					ratios = append(ratios, a/b)
				}
			}
			if len(ratios) > 0 {
				fmt.Fprintf(out, "ratio  %s / %s = %.2f  (median of per-run ratios %s)\n", groupName(n), groupName(first), median(ratios), join2(ratios))
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d measurement(s) failed or did not deliver every event exactly once (see above)", bad)
	}
	return nil
}

// scaleoutOne measures one group once and prints its lines, each prefixed
// with name. It returns the figures (deliveries/s; or the clients served,
// strictly and but for the subscribers closed with 1001) and whether the
// measurement counts: it did not fail and, for webhooks, every event was
// delivered exactly once with a valid signature.
func scaleoutOne(ctx context.Context, mode string, g *server, o *options, sf *scaleoutFlags, name string, out io.Writer) ([]float64, bool) {
	if mode == "webhook" {
		c0 := snapCPU(g, sf.natsPIDs)
		r, err := runWebhook(ctx, g, o.webhook)
		c1 := snapCPU(g, sf.natsPIDs)
		if err != nil {
			fmt.Fprintf(out, "%s failed: %v\n", name, err)
			return nil, false
		}
		fmt.Fprintf(out, "%s %s\n%s   %s  deliveries by gateway %s\n", name, r, name, cores(c0, c1), deliveriesByGateway(ctx, g))
		if r.dup != 0 || r.missing != 0 || r.badSig != 0 || r.deliveries != r.published*max(o.webhook.receivers, 1) {
			fmt.Fprintf(out, "%s NOT EXACTLY ONCE: published %d, delivered %d, dup %d, missing %d, bad signature %d\n",
				name, r.published, r.deliveries, r.dup, r.missing, r.badSig)
			return nil, false
		}
		return []float64{r.perSec}, true
	}
	served, servedBut := 0, 0 // strictly; but for 1001 closes
	strict := true            // no count has failed yet
	for _, c := range sf.clients {
		cfg := o.fanout
		cfg.subs, cfg.rate = c, o.rates[0]
		c0 := snapCPU(g, sf.natsPIDs)
		r, err := runFanout(ctx, g, cfg)
		c1 := snapCPU(g, sf.natsPIDs)
		if err != nil {
			fmt.Fprintf(out, "%s subs %5d failed: %v\n", name, c, err)
			break
		}
		fmt.Fprintf(out, "%s %s\n%s   %s  closed with 1001 %d\n", name, r, name, cores(c0, c1), r.goingAway)
		strict = strict && r.sustained
		if strict {
			served = c
		}
		if !r.sustained && !sustainedButGoingAway(r, cfg) {
			break
		}
		servedBut = c
	}
	return []float64{float64(served), float64(servedBut)}, true
}

// sustainedButGoingAway reports whether a fan-out run failed only because
// the gateway closed some subscribers with 1001 "gateway shutting down"
// while it was not stopping (a bug of the NATS store: see
// docs/BENCHMARKS.md): every other subscriber got every event once and in
// order, within the p99 bound, at the rate asked for.
func sustainedButGoingAway(r fanoutResult, cfg fanoutConfig) bool {
	return r.goingAway > 0 && r.cut == r.goingAway && r.othersBad == 0 &&
		r.p99 <= cfg.p99Limit && r.published >= 0.95*float64(cfg.rate)
}

// deliveriesByGateway says how many deliveries each gateway of g made, from
// its eventgate_webhook_deliveries_total{result="succeeded"} counter (a
// fresh process's, so the whole measurement's): "6512+6801+6687", with "?"
// for one that could not be read.
func deliveriesByGateway(ctx context.Context, g *server) string {
	client := newClient(1)
	defer client.CloseIdleConnections()
	var f []string
	for i := range len(g.peers) + 1 {
		n, err := succeededDeliveries(ctx, client, g.urlFor(i))
		if err != nil {
			f = append(f, "?")
			continue
		}
		f = append(f, strconv.FormatFloat(n, 'f', 0, 64))
	}
	return strings.Join(f, "+")
}

// succeededDeliveries reads one gateway's succeeded deliveries from its
// /metrics.
func succeededDeliveries(ctx context.Context, client *http.Client, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	const series = `eventgate_webhook_deliveries_total{result="succeeded"} `
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, nil // no delivery yet: the series is not there
}
