// Command load is eventgate's load tool. It speaks only the public API
// (HTTP, and WebSocket for streams) and measures a gateway and the
// baselines it is compared with, each as a sibling process on a free
// loopback port, so that every report carries ratios measured in one run.
//
//	go run ./bench/load ingest  [--target eventgate|bare] [--clients 64] [--batch 1] [--duration 5s]
//	go run ./bench/load fanout  [--target eventgate|bare-hub|centrifugo] [--subs 100] [--rate 2000,5000] [--duration 5s]
//	go run ./bench/load webhook [--receivers 1] [--rate 0 --events 50000 | --rate 1000 --duration 5s | --backlog 20000]
//	go run ./bench/load compare ingest|fanout|webhook --targets eventgate,bare [--runs 3] [mode flags]
//	go run ./bench/load scaleout webhook|stream --nats-url URLS [--gateways 1,3] [--runs 3] [mode flags]
//
// eventgate's targets, each optionally :BINARY for a given build:
//
//	eventgate           the ring buffer (--store memory)
//	eventgate-nats      --store nats --nats-embedded, file storage in a fresh
//	                    temporary directory, removed when it stops
//	eventgate-nats-url  --store nats --nats-url URLS --nats-replicas N, from
//	                    this tool's --nats-url (loopback only) and
//	                    --nats-replicas; eventgate's streams on that NATS are
//	                    deleted before each run unless --nats-reset=false
//
// so that, for example,
//
//	go run ./bench/load compare ingest --targets eventgate,eventgate-nats,eventgate-nats-url \
//		--nats-url nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 --nats-replicas 3 --runs 3 --batch 100
//
// measures the ring, embedded NATS and a cluster in one run. The webhook
// mode measures deliveries while publishing flat out (--events) or at a
// rate, or, with --backlog N, draining N events published while the
// webhooks were disabled; --publishers P posts from P concurrent clients.
//
// scaleout spawns groups of gateways on one NATS (eventgate-nats-url), one
// gateway against three by default, and measures webhook deliveries or how
// many stream clients each group serves; see scaleout.go.
//
// --url measures a running server instead of spawning one (loopback only;
// give --pid to get its CPU time). Every loop is bounded by a duration or a
// count, and every spawned process and temporary directory is removed on
// exit. See docs/BENCHMARKS.md for the method and the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

const usage = `usage: load ingest|fanout|webhook [flags]
       load compare ingest|fanout|webhook --targets a,b [flags]
       load scaleout webhook|stream --nats-url URLS [--gateways 1,3] [flags]
run "load MODE -h" for a mode's flags`

// run is the testable body of main.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	}
	switch cmd := args[0]; cmd {
	case "serve-bare", "serve-bare-hub": // hidden: the baselines as sibling processes
		return serveBare(ctx, cmd[len("serve-"):], args[1:])
	case "ingest", "fanout", "webhook":
		return measure(ctx, cmd, false, args[1:], stdout)
	case "compare":
		if len(args) < 2 {
			return errors.New("compare needs a mode: ingest, fanout or webhook")
		}
		return measure(ctx, args[1], true, args[2:], stdout)
	case "scaleout":
		return scaleout(ctx, args[1:], stdout)
	default:
		fmt.Fprintln(stdout, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
