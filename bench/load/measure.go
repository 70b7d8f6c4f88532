package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are every mode's flags.
type options struct {
	tf      targetFlags
	targets []string // compare: the first is measured against the others
	runs    int
	ingest  ingestConfig
	fanout  fanoutConfig
	rates   []int // fanout: rates tried in turn on one server
	webhook webhookConfig
}

// parseFlags reads the flags of mode (and of compare); each of extra may
// define more flags on the same set before it is parsed (scaleout's).
func parseFlags(mode string, compare bool, args []string, out io.Writer, extra ...func(*flag.FlagSet)) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.tf.target, "target", targetEventgate, "eventgate (ring), eventgate-nats (embedded NATS, file storage in a temp dir), eventgate-nats-url (--nats-url), each optionally :BINARY (a given build); bare (ingest), bare-hub (fanout) or centrifugo (fanout)")
	fs.StringVar(&o.tf.url, "url", "", "measure a running server at this loopback URL instead of spawning one")
	fs.IntVar(&o.tf.pid, "pid", 0, "with --url: the server's pid, to report its CPU")
	fs.StringVar(&o.tf.bin, "bin", "", "eventgate binary to spawn (default: go build of the repository)")
	fs.StringVar(&o.tf.debugAddr, "debug-addr", "", "passed to a spawned eventgate: pprof listener (loopback)")
	fs.IntVar(&o.tf.bufferSize, "buffer-size", 200000, "passed to a spawned eventgate: ring capacity")
	fs.StringVar(&o.tf.logDir, "log-dir", "", "write spawned servers' output here (default: discard)")
	fs.StringVar(&o.tf.natsURL, "nats-url", "", "eventgate-nats-url: NATS server URLs, comma-separated (loopback only)")
	fs.IntVar(&o.tf.natsReplicas, "nats-replicas", 1, "eventgate-nats-url: passed to eventgate (3 on a three-node cluster)")
	fs.BoolVar(&o.tf.natsReset, "nats-reset", true, "eventgate-nats-url: delete eventgate's streams on that NATS before each run, so every run starts empty")
	fs.IntVar(&o.runs, "runs", 1, "repeat the measurement; the summary gives medians")
	targets := fs.String("targets", "", "compare: comma-separated targets, the first measured against the others (default by mode)")

	switch mode {
	case "ingest":
		fs.IntVar(&o.ingest.clients, "clients", 64, "keep-alive clients")
		fs.IntVar(&o.ingest.batch, "batch", 1, "events per request (1: a single event object)")
		fs.DurationVar(&o.ingest.duration, "duration", 5*time.Second, "how long to post")
		fs.IntVar(&o.ingest.maxReqs, "max-requests", 0, "stop after this many requests (0: duration only)")
		fs.BoolVar(&o.ingest.netHTTP, "net-http", false, "post with net/http's client instead of the raw HTTP/1.1 one")
	case "fanout":
		fs.IntVar(&o.fanout.subs, "subs", 100, "WebSocket subscribers")
		rates := fs.String("rate", "2000", "events/s published; a comma list tries each in turn")
		fs.DurationVar(&o.fanout.duration, "duration", 5*time.Second, "how long to publish, per rate")
		fs.DurationVar(&o.fanout.grace, "grace", 10*time.Second, "how long subscribers may take to catch up")
		fs.DurationVar(&o.fanout.p99Limit, "p99", 100*time.Millisecond, "a rate is sustained only with p99 under this")
		defer func() {
			for _, f := range strings.Split(*rates, ",") {
				if r, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && r > 0 {
					o.rates = append(o.rates, r)
				}
			}
		}()
	case "webhook":
		fs.IntVar(&o.webhook.receivers, "receivers", 1, "local receivers, one webhook each (0: no webhook, the ingest's own cost per event)")
		fs.IntVar(&o.webhook.rate, "rate", 0, "events/s (0: --events as fast as possible)")
		fs.IntVar(&o.webhook.events, "events", 50000, "with --rate 0: events to publish (keep under --buffer-size)")
		fs.DurationVar(&o.webhook.duration, "duration", 5*time.Second, "with --rate: how long to publish")
		fs.DurationVar(&o.webhook.grace, "grace", 60*time.Second, "how long deliveries may take after publishing")
		fs.IntVar(&o.webhook.publishers, "publishers", 1, "with --events or --backlog: concurrent publishers, each posting batches of 100 one after another")
		fs.IntVar(&o.webhook.backlog, "backlog", 0, "measure draining instead: publish this many events to disabled webhooks, then enable them (overrides --rate and --events)")
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	for _, f := range extra {
		f(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.targets = []string{o.tf.target}
	if compare {
		switch {
		case *targets != "":
			o.targets = strings.Split(*targets, ",")
		case mode == "ingest":
			o.targets = []string{targetEventgate, targetBare}
		case mode == "fanout":
			o.targets = []string{targetEventgate, targetBareHub, targetCentrifugo}
		}
		if o.tf.url != "" {
			return nil, errors.New("compare spawns its targets: --url cannot be used")
		}
	}
	o.runs = max(o.runs, 1)
	return o, nil
}

// measurement is one target's figures in one run: the headline figure
// compare takes ratios of, and the lines to print.
type measurement struct {
	primary  float64
	lines    []string
	fan      []fanoutResult // fanout: one per rate
	statuses map[string]int // ingest: answers by status
}

// measure runs mode against each target, o.runs times, rotating the order
// of the targets every run so that none always goes first, and prints each
// run and the medians (and, comparing, the medians of per-run ratios).
func measure(ctx context.Context, mode string, compare bool, args []string, out io.Writer) error {
	o, err := parseFlags(mode, compare, args, out)
	if err != nil {
		return err
	}
	b, done, err := newTempBuilder()
	if err != nil {
		return err
	}
	defer done()

	fmt.Fprintf(out, "# %s: targets %s, %d run(s); %d CPUs (GOMAXPROCS %d); load average %s\n",
		mode, strings.Join(o.targets, ","), o.runs, runtime.NumCPU(), runtime.GOMAXPROCS(0), loadAvg())
	w := nameWidth(o.targets)
	figures := map[string][]float64{}       // target → primary figure per run (NaN-free: skipped runs absent)
	fans := map[string][]fanoutResult{}     // fanout: target → every rate's result in every run
	statuses := map[string]map[string]int{} // ingest: target → answers by status over all runs
	perRun := make([]map[string]float64, o.runs)
	for r := range o.runs {
		perRun[r] = map[string]float64{}
		for i := range o.targets {
			tgt := o.targets[(i+r)%len(o.targets)]
			tf := o.tf
			tf.target = tgt
			m, err := measureOne(ctx, mode, tf, o, b)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				if !compare {
					return err
				}
				fmt.Fprintf(out, "run %d %-*s skipped: %v\n", r+1, w, tgt, err)
				continue
			}
			for _, l := range m.lines {
				fmt.Fprintf(out, "run %d %-*s %s\n", r+1, w, tgt, l)
			}
			figures[tgt] = append(figures[tgt], m.primary)
			fans[tgt] = append(fans[tgt], m.fan...)
			if statuses[tgt] == nil && m.statuses != nil {
				statuses[tgt] = map[string]int{}
			}
			for k, v := range m.statuses {
				statuses[tgt][k] += v
			}
			perRun[r][tgt] = m.primary
		}
	}
	if mode == "fanout" {
		return summariseFanout(out, o, fans)
	}
	unit := map[string]string{"ingest": "events/s", "fanout": "delivered events/s (best sustained rate)", "webhook": "deliveries/s"}[mode]
	fmt.Fprintf(out, "# medians of %s; load average %s\n", unit, loadAvg())
	for _, t := range o.targets {
		if len(figures[t]) > 0 {
			fmt.Fprintf(out, "median %-*s %10.0f  (%s)\n", w, t, median(figures[t]), join(figures[t]))
		}
	}
	for _, t := range o.targets {
		if st := statuses[t]; st != nil {
			fmt.Fprintf(out, "answers %-*s %s\n", w, t, summariseStatuses(st))
		}
	}
	if !compare {
		return nil
	}
	first := o.targets[0]
	for _, t := range o.targets[1:] {
		var ratios []float64
		for _, pr := range perRun {
			if a, b := pr[first], pr[t]; a > 0 && b > 0 {
				ratios = append(ratios, a/b)
			}
		}
		if len(ratios) > 0 {
			inv := make([]float64, len(ratios))
			for i, r := range ratios {
				inv[i] = 1 / r
			}
			fmt.Fprintf(out, "ratio  %s/%s = %.2f  (median of per-run ratios %s); %s/%s = %.3f\n",
				first, t, median(ratios), join2(ratios), t, first, median(inv))
		}
	}
	return nil
}

// measureOne starts one target, measures it and stops it.
func measureOne(ctx context.Context, mode string, tf targetFlags, o *options, b *builder) (measurement, error) {
	s, err := startServer(ctx, tf, b)
	if err != nil {
		return measurement{}, err
	}
	defer s.stop()
	switch mode {
	case "ingest":
		r, err := runIngest(ctx, s, o.ingest)
		return measurement{primary: r.events, lines: []string{r.String()}, statuses: r.statuses}, err
	case "fanout":
		var m measurement
		for _, rate := range o.rates {
			cfg := o.fanout
			cfg.rate = rate
			r, err := runFanout(ctx, s, cfg)
			if err != nil {
				m.lines = append(m.lines, fmt.Sprintf("subs %5d rate %6d/s  failed: %v", cfg.subs, rate, err))
				continue
			}
			m.lines = append(m.lines, r.String())
			m.fan = append(m.fan, r)
			if r.sustained {
				m.primary = max(m.primary, r.delivered)
			}
		}
		if len(m.lines) == len(o.rates) && m.primary == 0 && strings.Contains(strings.Join(m.lines, ""), "failed:") {
			return m, errors.New(strings.Join(m.lines, "; "))
		}
		return m, nil
	default:
		r, err := runWebhook(ctx, s, o.webhook)
		return measurement{primary: r.perSec, lines: []string{r.String()}}, err
	}
}

// nameWidth is the width of the longest target name, for aligned lines.
func nameWidth(targets []string) int {
	w := 10
	for _, t := range targets {
		w = max(w, len(t))
	}
	return w
}

// summariseStatuses says how many answers were not 2xx, of how many, and
// gives every status's count: "non-2xx 3 of 1200 requests [202×1197 500×3]".
func summariseStatuses(st map[string]int) string {
	total, bad := 0, 0
	codes := make([]string, 0, len(st))
	for k, v := range st {
		total += v
		if !strings.HasPrefix(k, "2") {
			bad += v
		}
		codes = append(codes, fmt.Sprintf("%s×%d", k, v))
	}
	slices.Sort(codes)
	return fmt.Sprintf("non-2xx %d of %d requests [%s]", bad, total, strings.Join(codes, " "))
}

// median returns the median of xs (the mean of the middle two when even).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func join(xs []float64) string {
	f := make([]string, len(xs))
	for i, x := range xs {
		f[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(f, " ")
}

func join2(xs []float64) string {
	f := make([]string, len(xs))
	for i, x := range xs {
		f[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(f, " ")
}

// summariseFanout prints, per target and rate, the medians over runs, and
// the best sustained rate of each target: the highest median delivered
// events/s whose median p99 is under the limit, with nothing lost,
// duplicated, reordered or cut in any run. On a noisy machine one run's
// p99 is a poor judge; the median of several is a fair one. Ratios are of
// the best sustained figures.
func summariseFanout(out io.Writer, o *options, fans map[string][]fanoutResult) error {
	w := nameWidth(o.targets)
	fmt.Fprintf(out, "# fan-out medians over %d run(s), %d subscribers; load average %s\n", o.runs, o.fanout.subs, loadAvg())
	best := map[string]float64{} // highest sustained median delivered/s
	peak := map[string]float64{} // highest median delivered/s with nothing lost, any latency
	for _, t := range o.targets {
		for _, rate := range o.rates {
			var deliv, p50, p99, pub []float64
			var bad uint64
			for _, r := range fans[t] {
				if r.rate != rate {
					continue
				}
				deliv, pub = append(deliv, r.delivered), append(pub, r.published)
				p50, p99 = append(p50, float64(r.p50)), append(p99, float64(r.p99))
				bad += r.lost + r.dup + r.reordered + uint64(r.cut)
			}
			if len(deliv) == 0 {
				continue
			}
			mp99 := time.Duration(median(p99))
			ok := bad == 0 && mp99 <= o.fanout.p99Limit && median(pub) >= 0.95*float64(rate)
			if bad == 0 {
				peak[t] = max(peak[t], median(deliv))
			}
			verdict := "sustained"
			if !ok {
				verdict = "not sustained"
			} else {
				best[t] = max(best[t], median(deliv))
			}
			fmt.Fprintf(out, "median %-*s rate %6d/s  delivered %9.0f/s  p50 %7s ms  p99 %7s ms  lost+dup+reordered+cut %d  %s\n",
				w, t, rate, median(deliv), ms(time.Duration(median(p50))), ms(mp99), bad, verdict)
		}
	}
	for _, t := range o.targets {
		fmt.Fprintf(out, "best   %-*s %10.0f delivered events/s sustained, peak %.0f at any p99\n", w, t, best[t], peak[t])
	}
	first := o.targets[0]
	for _, t := range o.targets[1:] {
		if best[first] > 0 && best[t] > 0 {
			fmt.Fprintf(out, "ratio  %s/%s = %.2f (best sustained)\n", first, t, best[first]/best[t])
		}
		// Conservative: our sustained figure against their peak at any
		// latency, which holds even when they sustain no rate tried.
		if best[first] > 0 && peak[t] > 0 {
			fmt.Fprintf(out, "ratio  %s sustained / %s peak = %.2f\n", first, t, best[first]/peak[t])
		}
	}
	return nil
}
