// Package api translates HTTP into eventgate's gateway: chi routes,
// validated request types, CloudEvents mapping, API keys, problem+json and
// the WebSocket/SSE stream adapters.
package api

import (
	"crypto"
	"log/slog"
	"net/http"
	"time"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/web"
	"github.com/go-chi/chi/v5"
	"github.com/go-playground/validator/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for zero Config fields.
const (
	DefaultMaxBody     = 1 << 20
	DefaultMaxBatch    = 1000
	DefaultMaxInflight = 1024
)

// Config wires a Server. Publisher is required; zero fields get defaults.
type Config struct {
	Publisher *gateway.Publisher
	// Hub serves /v1/stream (required).
	Hub *gateway.Hub
	// Dispatcher serves /v1/webhooks (required).
	Dispatcher *dispatch.Dispatcher
	// Capacity reports the log's capacity for metrics (nil: unknown, 0).
	Capacity func() int
	// Ready reports whether the log can take traffic (for example, its
	// NATS connection is up); nil means always. /readyz answers 503 with
	// the error otherwise.
	Ready func() error
	// Keys are the accepted API keys; none (and no token key) means the
	// API is open.
	Keys     []string
	MaxBody  int64 // request body limit in bytes; default DefaultMaxBody
	MaxBatch int   // events per batch; default DefaultMaxBatch
	// MaxInflight caps API requests handled at once (streams excluded);
	// more get 503 at once. Default DefaultMaxInflight.
	MaxInflight int
	// TailHeartbeat is how often an idle delivery tail gets a keep-alive
	// comment (default DefaultTailHeartbeat).
	TailHeartbeat time.Duration
	// IngestRate limits POST /v1/events to this many events per second
	// per client (the API key auth accepted, or the TCP peer's address
	// when the API is open); 0 means no limit.
	IngestRate int
	// IngestBurst is the most events a client may send at once, and so
	// the largest batch it may post (default IngestRate).
	IngestBurst int
	// IngestClients bounds the clients whose rate-limit state is kept,
	// least recently used dropped first (default DefaultIngestClients).
	IngestClients int
	// Addr is the address the gateway listens on, as --addr. On loopback
	// only loopback host names and AllowedHosts are accepted as the Host
	// of a request; elsewhere, or when Addr is empty (unknown), any Host
	// is, unless AllowedHosts is set. Other hosts get 421 (a DNS-rebinding
	// guard). main always sets it.
	Addr string
	// CORSOrigins are the web origins whose pages may call the gateway
	// (see Origins for the syntax; check them with ParseOrigins). Requests
	// from any other origin but the gateway's own get 403.
	CORSOrigins []string
	// AllowedHosts are host names (no port) accepted as Host besides
	// localhost and the loopback addresses.
	AllowedHosts []string
	Logger       *slog.Logger
	// Registry receives the API's metrics and is served on /metrics
	// (default: a new registry).
	Registry *prometheus.Registry

	// TokenSecret, when set, accepts HS256 tokens signed with it and lets
	// POST /v1/tokens mint them (--token-secret).
	TokenSecret string
	// TokenPublicKey, when set, accepts tokens signed with its private
	// key: RS256, ES256 or EdDSA by its kind (see ParseTokenPublicKey).
	// With either token key, a request needs an API key or a token.
	TokenPublicKey crypto.PublicKey
	// TokenMaxTTL caps a minted token's ttl (default DefaultTokenMaxTTL).
	TokenMaxTTL time.Duration
}

// Server is the HTTP face of the gateway. Create it with New; it is an
// http.Handler safe for concurrent use.
type Server struct {
	cfg      Config
	validate *validator.Validate
	keys     keyring
	tokens   *tokenVerifier // nil: no token key configured
	metrics  *httpMetrics
	ce       *ceCache // CloudEvents conversions shared by stream clients
	router   chi.Router
	limiter  *ingestLimiter // nil when ingest is not rate limited
	hosts    hostGuard
	origins  *Origins
}

// New returns a Server for cfg. It panics when Publisher, Hub or
// Dispatcher is nil or a CORSOrigins entry is malformed, wiring mistakes.
func New(cfg Config) *Server {
	if cfg.Publisher == nil || cfg.Hub == nil || cfg.Dispatcher == nil {
		panic("api.New: Config.Publisher, Hub and Dispatcher are required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Capacity == nil {
		cfg.Capacity = func() int { return 0 }
	}
	if cfg.IngestBurst <= 0 {
		cfg.IngestBurst = cfg.IngestRate
	}
	if cfg.TokenMaxTTL <= 0 {
		cfg.TokenMaxTTL = DefaultTokenMaxTTL
	}
	if cfg.IngestClients <= 0 {
		cfg.IngestClients = DefaultIngestClients
	}
	s := &Server{cfg: cfg, validate: newValidator(), keys: newKeyring(cfg.Keys), ce: newCECache()}
	s.tokens = newTokenVerifier([]byte(cfg.TokenSecret), cfg.TokenPublicKey)
	s.metrics = newHTTPMetrics(cfg.Registry, cfg.Publisher.Log(), cfg.Capacity)
	if cfg.IngestRate > 0 {
		s.limiter = newIngestLimiter(cfg.IngestRate, cfg.IngestBurst, cfg.IngestClients, cfg.Registry, s.metrics.limited.WithLabelValues("rate"))
	}
	s.hosts = newHostGuard(cfg.Addr, cfg.AllowedHosts)
	var err error
	if s.origins, err = ParseOrigins(cfg.CORSOrigins); err != nil {
		panic("api.New: Config.CORSOrigins: " + err.Error())
	}
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(securityHeaders, s.metrics.instrument, s.hosts.check, checkOrigin(s.origins, r))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})

	// HEAD answers as GET does, without the body (net/http drops it).
	getHead := func(pattern string, h http.Handler) {
		r.Method(http.MethodGet, pattern, h)
		r.Method(http.MethodHead, pattern, h)
	}
	getHead("/healthz", http.HandlerFunc(s.healthz))
	getHead("/readyz", http.HandlerFunc(s.readyz))
	getHead("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{Registry: s.cfg.Registry}))
	getHead("/*", dashboardPolicy(http.FileServerFS(web.Files())))

	// A subrouter, so that an unknown /v1 path is a 404 problem document
	// for every method (not the dashboard's 404, nor a 405). Routing twice
	// costs ~2% of a single-event request (bench/load, against the routes
	// flattened into the root router: 0.98×).
	r.Route("/v1", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(inflightLimit(s.cfg.MaxInflight, s.metrics.limited.WithLabelValues("inflight")))
			r.Use(s.requireAuth(false))
			r.Post("/events", s.postEvents)
			r.Get("/events", s.listEvents)
			r.Get("/events/{seq}", s.getEvent)
			r.Group(func(r chi.Router) { // tokens need admin: true
				r.Use(requireAdmin)
				s.webhookRoutes(r)
				r.Post("/tokens", s.mintToken)
			})
		})
		// Long-lived streams: outside the in-flight limiter, whose tokens
		// are for short requests (a stream would hold one for its whole
		// life), but still behind the key, which browsers' EventSource and
		// WebSocket may send as access_token. Streams are bounded by their
		// own limits (--stream-queue, dispatch.MaxTails per webhook).
		r.Group(func(r chi.Router) {
			r.Use(s.requireAuth(true))
			s.streamRoutes(r)
			r.With(requireAdmin).Get("/webhooks/{id}/deliveries/stream", s.tailDeliveries)
		})
	})
	return r
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Publisher.Draining() {
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "draining: the gateway is shutting down")
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.Header().Set("Retry-After", "1")
			fail(w, http.StatusServiceUnavailable, "the event store is not ready: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
