package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The eventgate targets on NATS JetStream (--store nats).
const (
	// targetEventgateNATS is eventgate with --nats-embedded, its file
	// storage in a fresh temporary directory removed when it stops.
	targetEventgateNATS = "eventgate-nats"
	// targetEventgateNATSURL is eventgate on the NATS server or cluster
	// named by --nats-url, with --nats-replicas.
	targetEventgateNATSURL = "eventgate-nats-url"
)

// eventgateKinds are the targets that spawn eventgate itself.
var eventgateKinds = []string{targetEventgate, targetEventgateNATS, targetEventgateNATSURL}

// isEventgate reports whether kind (a target without its :BINARY) is
// eventgate on any store.
func isEventgate(kind string) bool { return slices.Contains(eventgateKinds, kind) }

// eventgateArgs returns the command line of a spawned eventgate of kind
// listening on addr: the ring with --buffer-size, embedded NATS on
// dataDir, or the NATS servers of tf.natsURL with tf.natsReplicas. The
// buffer size is also the NATS stream's max messages.
func eventgateArgs(kind string, tf targetFlags, addr, dataDir string) []string {
	args := []string{"--addr", addr, "--allow-private-targets", "--log-format", "json",
		"--buffer-size", fmt.Sprint(max(tf.bufferSize, 1000))}
	switch kind {
	case targetEventgateNATS:
		args = append(args, "--store", "nats", "--nats-embedded", "--data-dir", dataDir)
	case targetEventgateNATSURL:
		args = append(args, "--store", "nats", "--nats-url", tf.natsURL,
			"--nats-replicas", fmt.Sprint(max(tf.natsReplicas, 1)))
	}
	if tf.debugAddr != "" {
		args = append(args, "--debug-addr", tf.debugAddr)
	}
	return args
}

// checkNATSURLs refuses an empty list or any URL of it that is not on a
// loopback address.
func checkNATSURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("eventgate-nats-url needs --nats-url nats://127.0.0.1:4222[,…]")
	}
	for _, u := range strings.Split(list, ",") {
		if err := checkLoopback(strings.TrimSpace(u)); err != nil {
			return fmt.Errorf("--nats-url: %w", err)
		}
	}
	return nil
}

// natsStreams are the streams eventgate keeps on NATS: the log, the
// delivery log and the webhooks' key-value bucket (store/natsjs's default
// names).
var natsStreams = []string{"EVENTGATE", "EVENTGATE_DELIVERIES", "KV_EVENTGATE_WEBHOOKS"}

// resetNATS deletes eventgate's streams on the NATS servers of urls, so
// that a run starts from an empty log, as a spawned ring or embedded
// server does, and may change the replica count. A stream that does not
// exist is not an error. It gives up after 30 s.
func resetNATS(ctx context.Context, urls string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(urls, nats.Name("eventgate bench/load reset"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("reset NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("reset NATS: %w", err)
	}
	for _, name := range natsStreams {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("reset NATS: delete stream %s: %w", name, err)
		}
	}
	return nil
}

// prepareEventgate does what a spawned eventgate of kind needs before it
// starts: a fresh data directory under parent for embedded NATS, a check
// and (with tf.natsReset) a reset of the NATS servers for a URL. cleanup,
// never nil, removes what it made; the caller runs it after the process
// exited.
func prepareEventgate(ctx context.Context, kind string, tf targetFlags, parent string) (dataDir string, cleanup func(), err error) {
	cleanup = func() {}
	switch kind {
	case targetEventgateNATS:
		if dataDir, err = os.MkdirTemp(parent, "nats-data-"); err != nil {
			return "", cleanup, err
		}
		return dataDir, func() { _ = os.RemoveAll(dataDir) }, nil
	case targetEventgateNATSURL:
		if err := checkNATSURLs(tf.natsURL); err != nil {
			return "", cleanup, err
		}
		if tf.natsReset {
			if err := resetNATS(ctx, tf.natsURL); err != nil {
				return "", cleanup, err
			}
		}
	}
	return "", cleanup, nil
}
