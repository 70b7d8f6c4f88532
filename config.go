package main

import (
	"crypto"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventgate/eventgate/api"
	"github.com/eventgate/eventgate/store/natsjs"
)

// errHelp is returned by parseConfig after printing --help.
var errHelp = errors.New("help requested")

// config is everything the flags and GATEWAY_* variables set.
type config struct {
	Addr    string
	APIKeys []string
	// TokenSecret accepts HS256 tokens and signs minted ones; the public
	// key (read from TokenPublicKeyFile) accepts RS256/ES256/EdDSA tokens.
	TokenSecret         string
	TokenPublicKeyFile  string
	TokenPublicKey      crypto.PublicKey
	TokenMaxTTL         time.Duration
	Insecure            bool
	LogFormat           string
	BufferSize          int
	BufferBytes         int64
	MaxBody             int64
	MaxBatch            int
	AllowPrivateTargets bool
	RetrySchedule       []time.Duration
	DeliveryTimeout     time.Duration
	EndpointConcurrency int
	MaxRetrying         int
	DisableAfter        time.Duration
	WebhookOrigin       string
	StreamQueue         int
	StreamQueueBytes    int64
	MaxInflight         int
	MaxStreams          int
	MaxWebhooks         int
	ReadHeaderTimeout   time.Duration
	IngestRate          int
	IngestBurst         int
	AllowedHosts        []string
	CORSOrigins         []string
	ShutdownTimeout     time.Duration
	Store               string
	NATSURL             string
	NATSEmbedded        bool
	DataDir             string
	Retention           time.Duration
	NATSReplicas        int
	NATSCreds           string
	NATSTLSCA           string
	// EncryptionKey seals webhook secrets and header values in the NATS
	// bucket (--encryption-key, base64 of natsjs.EncryptionKeySize bytes).
	EncryptionKey []byte
	DebugAddr     string
}

// defaultRetrySchedule is the contract's --retry-schedule default.
const defaultRetrySchedule = "5s,5m,30m,2h,5h,10h,10h"

// parseConfig reads flags from args, then fills every flag not given on the
// command line from its GATEWAY_* twin in getenv. Flags win over the
// environment.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("eventgate", flag.ContinueOnError)
	fs.SetOutput(out)
	sched := defaultRetrySchedule
	maxBody := byteSize(1 << 20)
	bufferBytes := byteSize(256 << 20)
	streamQueueBytes := byteSize(16 << 20)
	keys := listFlag{}
	hosts := listFlag{}
	origins := listFlag{}
	envs := map[string]string{} // flag name -> env var

	def := func(name, env string) { envs[name] = env }
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	def("addr", "GATEWAY_ADDR")
	fs.Var(&keys, "api-key", "`key` accepted as Authorization: Bearer <key> (repeatable; env: comma-separated)")
	def("api-key", "GATEWAY_API_KEYS")
	fs.StringVar(&c.TokenSecret, "token-secret", "", "`secret` (32 bytes or more) that HS256 tokens are signed with; enables POST /v1/tokens")
	def("token-secret", "GATEWAY_TOKEN_SECRET")
	fs.StringVar(&c.TokenPublicKeyFile, "token-public-key", "", "PEM `file` of the public key RS256, ES256 or EdDSA tokens are signed with (RSA 2048+, ECDSA P-256, Ed25519)")
	def("token-public-key", "GATEWAY_TOKEN_PUBLIC_KEY")
	fs.DurationVar(&c.TokenMaxTTL, "token-max-ttl", api.DefaultTokenMaxTTL, "longest ttl POST /v1/tokens grants")
	def("token-max-ttl", "GATEWAY_TOKEN_MAX_TTL")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow a non-loopback --addr with no API key")
	def("insecure", "GATEWAY_INSECURE")
	fs.StringVar(&c.LogFormat, "log-format", "", "log format: text or json (default: text on a terminal, else json)")
	def("log-format", "GATEWAY_LOG_FORMAT")
	fs.IntVar(&c.BufferSize, "buffer-size", 100000, "ring buffer capacity, in events")
	def("buffer-size", "GATEWAY_BUFFER_SIZE")
	fs.Var(&bufferBytes, "buffer-bytes", "event buffer limit in bytes (or with KiB/MiB/GiB suffix): the oldest events go when it or --buffer-size is reached; one event larger is refused with 413 (default 256MiB)")
	def("buffer-bytes", "GATEWAY_BUFFER_BYTES")
	fs.Var(&maxBody, "max-body", "request body limit (bytes, or with KiB/MiB suffix) (default 1MiB)")
	def("max-body", "GATEWAY_MAX_BODY")
	fs.IntVar(&c.MaxBatch, "max-batch", 1000, "events per batch (default capped at --buffer-size)")
	def("max-batch", "GATEWAY_MAX_BATCH")
	fs.BoolVar(&c.AllowPrivateTargets, "allow-private-targets", false, "let webhooks reach loopback, private and link-local addresses")
	def("allow-private-targets", "GATEWAY_ALLOW_PRIVATE_TARGETS")
	fs.StringVar(&sched, "retry-schedule", defaultRetrySchedule, "comma-separated delays between delivery attempts, each jittered ±20%")
	def("retry-schedule", "GATEWAY_RETRY_SCHEDULE")
	fs.DurationVar(&c.DeliveryTimeout, "delivery-timeout", 10*time.Second, "timeout of one delivery attempt")
	def("delivery-timeout", "GATEWAY_DELIVERY_TIMEOUT")
	fs.IntVar(&c.EndpointConcurrency, "endpoint-concurrency", 8, "delivery requests in flight per webhook")
	def("endpoint-concurrency", "GATEWAY_ENDPOINT_CONCURRENCY")
	fs.IntVar(&c.MaxRetrying, "max-retrying", 10000, "deliveries waiting for a retry, per webhook")
	def("max-retrying", "GATEWAY_MAX_RETRYING")
	fs.DurationVar(&c.DisableAfter, "disable-after", 72*time.Hour, "continuous failure after which a webhook is disabled")
	def("disable-after", "GATEWAY_DISABLE_AFTER")
	fs.StringVar(&c.WebhookOrigin, "webhook-origin", "", "WebHook-Request-Origin of validation handshakes: this gateway's public host name (default: the machine's host name)")
	def("webhook-origin", "GATEWAY_WEBHOOK_ORIGIN")
	fs.IntVar(&c.StreamQueue, "stream-queue", 10000, "events a stream client may lag before it is cut off")
	def("stream-queue", "GATEWAY_STREAM_QUEUE")
	fs.Var(&streamQueueBytes, "stream-queue-bytes", "bytes of events a stream client may lag before it is cut off (or with KiB/MiB suffix; --store memory) (default 16MiB)")
	def("stream-queue-bytes", "GATEWAY_STREAM_QUEUE_BYTES")
	fs.IntVar(&c.MaxInflight, "max-inflight", 1024, "API requests handled at once (streams excluded); more get 503 with Retry-After")
	def("max-inflight", "GATEWAY_MAX_INFLIGHT")
	fs.IntVar(&c.MaxStreams, "max-streams", 10000, "stream clients (WebSocket and SSE) served at once; more get 503 with Retry-After")
	def("max-streams", "GATEWAY_MAX_STREAMS")
	fs.IntVar(&c.MaxWebhooks, "max-webhooks", 1000, "webhooks the gateway serves; creating more answers 409")
	def("max-webhooks", "GATEWAY_MAX_WEBHOOKS")
	fs.IntVar(&c.IngestRate, "ingest-rate", 0, "events per second per API key (per client IP when open) on POST /v1/events, a batch counting as its events; 0 = no limit")
	def("ingest-rate", "GATEWAY_INGEST_RATE")
	fs.IntVar(&c.IngestBurst, "ingest-burst", 0, "events a client may send at once under --ingest-rate, so the largest batch it may post (default: --ingest-rate)")
	def("ingest-burst", "GATEWAY_INGEST_BURST")
	fs.Var(&hosts, "allowed-hosts", "comma-separated `hosts` accepted in the Host header besides localhost and loopback addresses (on a loopback --addr nothing else is; elsewhere, when set, only these are)")
	def("allowed-hosts", "GATEWAY_ALLOWED_HOSTS")
	fs.Var(&origins, "cors-origins", "comma-separated web `origins` (scheme://host[:port], https://*.example.com for its subdomains) whose pages may call the API and open streams; other origins get 403")
	def("cors-origins", "GATEWAY_CORS_ORIGINS")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request headers (slow clients are cut off)")
	def("read-header-timeout", "GATEWAY_READ_HEADER_TIMEOUT")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "drain time on SIGTERM/SIGINT")
	def("shutdown-timeout", "GATEWAY_SHUTDOWN_TIMEOUT")
	fs.StringVar(&c.Store, "store", "memory", "event store: memory (ring buffer) or nats (JetStream)")
	def("store", "GATEWAY_STORE")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URL(s) for --store nats, comma-separated (default nats://127.0.0.1:4222)")
	def("nats-url", "GATEWAY_NATS_URL")
	fs.BoolVar(&c.NATSEmbedded, "nats-embedded", false, "run an in-process NATS JetStream server on --data-dir (--store nats)")
	def("nats-embedded", "GATEWAY_NATS_EMBEDDED")
	fs.StringVar(&c.DataDir, "data-dir", "", "directory of the embedded NATS server's files (required with --nats-embedded)")
	def("data-dir", "GATEWAY_DATA_DIR")
	fs.DurationVar(&c.Retention, "retention", 0, "with --store nats, drop events older than this (0: keep until --buffer-size pushes them out)")
	def("retention", "GATEWAY_RETENTION")
	fs.IntVar(&c.NATSReplicas, "nats-replicas", 1, "replicas of the JetStream stream (3 on a three-node cluster)")
	def("nats-replicas", "GATEWAY_NATS_REPLICAS")
	fs.StringVar(&c.NATSCreds, "nats-creds", "", "NATS credentials file (--store nats with --nats-url)")
	def("nats-creds", "GATEWAY_NATS_CREDS")
	fs.StringVar(&c.NATSTLSCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server's TLS certificate")
	def("nats-tls-ca", "GATEWAY_NATS_TLS_CA")
	fs.Func("encryption-key", "with --store nats, seal webhook secrets and custom header values in the bucket with AES-256-GCM: 32 random bytes, base64 (e.g. `openssl rand -base64 32`)", func(v string) error {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) != natsjs.EncryptionKeySize {
			return fmt.Errorf("want base64 of %d bytes", natsjs.EncryptionKeySize)
		}
		c.EncryptionKey = k
		return nil
	})
	def("encryption-key", "GATEWAY_ENCRYPTION_KEY")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve pprof on this loopback address (off when empty)")
	def("debug-addr", "GATEWAY_DEBUG_ADDR")

	fs.Usage = func() {
		fmt.Fprintf(out, "eventgate: an event gateway (ingest, webhooks, streams).\n\nUsage: eventgate [flags]\n\nEvery flag has an environment twin, shown in brackets; a flag given on the command line wins.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  --%s %s\n    \t%s [%s]", f.Name, name, usage, envs[f.Name])
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && !strings.Contains(usage, "(default") {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, env := range envs {
		v := getenv(env)
		if set[name] || v == "" {
			continue
		}
		switch name {
		case "api-key":
			keys = nil // the env var is a comma-separated list
		case "allowed-hosts":
			hosts = nil
		case "cors-origins":
			origins = nil
		}
		if err := fs.Set(name, v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", env, v, err)
		}
	}
	c.APIKeys, c.MaxBody, c.AllowedHosts, c.CORSOrigins = keys, int64(maxBody), hosts, origins
	c.BufferBytes, c.StreamQueueBytes = int64(bufferBytes), int64(streamQueueBytes)
	if !set["max-batch"] && getenv(envs["max-batch"]) == "" {
		c.MaxBatch = min(c.MaxBatch, c.BufferSize) // a small buffer caps the default
	}

	var err error
	if c.RetrySchedule, err = parseSchedule(sched); err != nil {
		return c, fmt.Errorf("--retry-schedule: %w", err)
	}
	if c.TokenPublicKeyFile != "" {
		b, err := os.ReadFile(c.TokenPublicKeyFile)
		if err == nil {
			c.TokenPublicKey, err = api.ParseTokenPublicKey(b)
		}
		if err != nil {
			return c, fmt.Errorf("--token-public-key: %w", err)
		}
	}
	return c, c.check()
}

// check validates what flag types cannot.
func (c config) check() error {
	var errs []error
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat))
	}
	if c.BufferSize < 1 {
		errs = append(errs, errors.New("--buffer-size must be at least 1"))
	}
	if c.MaxBatch < 1 || c.MaxBatch > c.BufferSize {
		errs = append(errs, fmt.Errorf("--max-batch must be from 1 to --buffer-size (%d)", c.BufferSize))
	}
	if c.MaxBody < 1 {
		errs = append(errs, errors.New("--max-body must be positive"))
	}
	if c.BufferBytes < 1<<10 || c.StreamQueueBytes < 1<<10 {
		errs = append(errs, errors.New("--buffer-bytes and --stream-queue-bytes must be at least 1KiB"))
	}
	if c.EndpointConcurrency < 1 || c.MaxRetrying < 1 || c.StreamQueue < 1 || c.MaxInflight < 1 || c.MaxStreams < 1 || c.MaxWebhooks < 1 {
		errs = append(errs, errors.New("--endpoint-concurrency, --max-retrying, --stream-queue, --max-inflight, --max-streams and --max-webhooks must be at least 1"))
	}
	if !validOrigin(c.WebhookOrigin) {
		errs = append(errs, errors.New("--webhook-origin must be a host name: at most 253 printable characters, no spaces"))
	}
	if c.IngestRate < 0 || c.IngestBurst < 0 {
		errs = append(errs, errors.New("--ingest-rate and --ingest-burst must be 0 (off, or: as the rate) or positive"))
	}
	for _, h := range c.AllowedHosts {
		if !validOrigin(h) || strings.ContainsAny(h, "/@?#") {
			errs = append(errs, fmt.Errorf("--allowed-hosts: %q is not a host name", h))
		}
	}
	if _, err := api.ParseOrigins(c.CORSOrigins); err != nil {
		errs = append(errs, fmt.Errorf("--cors-origins: %w", err))
	}
	if c.DeliveryTimeout <= 0 || c.ShutdownTimeout <= 0 || c.DisableAfter <= 0 || c.ReadHeaderTimeout <= 0 {
		errs = append(errs, errors.New("--delivery-timeout, --shutdown-timeout, --disable-after and --read-header-timeout must be positive"))
	}
	switch c.Store {
	case "memory":
		if c.NATSURL != "" || c.NATSEmbedded || c.DataDir != "" || c.Retention != 0 || len(c.EncryptionKey) > 0 {
			errs = append(errs, errors.New("--nats-url, --nats-embedded, --data-dir, --retention and --encryption-key need --store nats"))
		}
	case "nats":
		if c.NATSEmbedded && c.DataDir == "" {
			errs = append(errs, errors.New("--nats-embedded needs --data-dir"))
		}
		if c.NATSEmbedded && c.NATSURL != "" {
			errs = append(errs, errors.New("--nats-embedded and --nats-url exclude each other"))
		}
		if c.MaxBatch > natsjs.DefaultMaxBatch {
			errs = append(errs, fmt.Errorf("--max-batch must be at most %d with --store nats (the server's atomic batch limit)", natsjs.DefaultMaxBatch))
		}
		if c.Retention < 0 || c.NATSReplicas < 1 {
			errs = append(errs, errors.New("--retention must not be negative and --nats-replicas must be at least 1"))
		}
	default:
		errs = append(errs, fmt.Errorf("--store must be memory or nats, not %q", c.Store))
	}
	if len(c.APIKeys) == 0 && c.TokenSecret == "" && c.TokenPublicKeyFile == "" && !c.Insecure && !isLoopback(c.Addr) {
		errs = append(errs, fmt.Errorf("refusing to listen on %s with no API key: anyone who can reach it could use the API; set --api-key (or GATEWAY_API_KEYS), listen on 127.0.0.1, or pass --insecure", c.Addr))
	}
	if c.TokenSecret != "" && len(c.TokenSecret) < 32 {
		errs = append(errs, errors.New("--token-secret must be at least 32 bytes (e.g. `openssl rand -base64 32`)"))
	}
	if c.TokenMaxTTL <= 0 {
		errs = append(errs, errors.New("--token-max-ttl must be positive"))
	}
	if c.DebugAddr != "" && !isLoopback(c.DebugAddr) {
		errs = append(errs, fmt.Errorf("--debug-addr %s must be a loopback address", c.DebugAddr))
	}
	return errors.Join(errs...)
}

// isLoopback reports whether addr's host is a loopback IP or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, fmt.Errorf("delay %q must be positive", part)
		}
		out = append(out, d)
	}
	return out, nil
}

// listFlag is a repeatable flag; one value may hold a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// byteSize is a flag of bytes with an optional KiB/MiB/GiB (or KB/MB/GB) suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Set(v string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 1048576 or 1MiB")
	}
	*b = byteSize(n * mult)
	return nil
}

// validOrigin reports whether o (empty: the default) can be sent as the
// WebHook-Request-Origin header: a host name, so printable ASCII without
// spaces, at most 253 bytes.
func validOrigin(o string) bool {
	if len(o) > 253 {
		return false
	}
	for i := 0; i < len(o); i++ {
		if o[i] <= ' ' || o[i] >= 0x7f {
			return false
		}
	}
	return true
}
