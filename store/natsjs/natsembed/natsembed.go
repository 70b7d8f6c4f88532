// Package natsembed runs a NATS server with JetStream inside the process,
// for `--store nats --nats-embedded --data-dir DIR`: durable events on one
// machine with no service to install. By default it opens no port at all;
// the gateway connects in-process.
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Config configures Start. Zero fields mean the documented defaults.
type Config struct {
	// DataDir holds JetStream's files; required. Events stored with file
	// storage survive a restart on the same DataDir.
	DataDir string
	// Name is the server's name, unique within a cluster; default
	// "eventgate".
	Name string
	// Port is the client port on 127.0.0.1: 0 opens none (connect with
	// Server.Connect, in-process), -1 picks a free one.
	Port int
	// MaxBatch raises the server's limit on one atomic batch (nats-server's
	// default, 1000, when 0); natsjs.Config.MaxBatch must not exceed it.
	MaxBatch int
	// MaxBatchInflight is how many atomic batches may be open at once on
	// one stream (nats-server's max_batch_inflight_per_stream, 50 when 0).
	// The default suits natsjs: one gateway keeps at most 12 open (its
	// writers' rounds and the Appends it publishes alone), and an atomic
	// batch on file storage is staged in its own files on disk, so more
	// open at once would cost memory and file handles without storing
	// faster; natsjs waits and tries again when a batch is refused for it.
	// Tests lower it to drive that path.
	MaxBatchInflight int
	// Cluster, when set, makes the server a member of a NATS cluster.
	Cluster *Cluster
	// ReadyTimeout bounds the wait for the server to accept connections;
	// default 10s.
	ReadyTimeout time.Duration
	// Logger receives the server's warnings and errors, and its notices
	// (the banner, the startup lines, cluster chatter) at debug level; nil
	// silences the server.
	Logger *slog.Logger
}

// Cluster is a server's cluster membership. Routes listen on 127.0.0.1.
type Cluster struct {
	Name   string   // cluster name, the same on every member; default "eventgate"
	Port   int      // route port; -1 picks a free one
	Routes []string // route URLs of other members, e.g. nats-route://127.0.0.1:6222
}

// Server is a running embedded NATS server. Its methods are safe for
// concurrent use.
type Server struct {
	ns *server.Server
}

// Start starts a server with JetStream storing under cfg.DataDir and waits
// until it accepts connections. Shutdown stops it.
func Start(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("natsembed: DataDir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "eventgate"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       "127.0.0.1",
		Port:       cfg.Port,
		DontListen: cfg.Port == 0,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	opts.JetStreamLimits.MaxBatchSize = cfg.MaxBatch
	opts.JetStreamLimits.MaxBatchInflightPerStream = cfg.MaxBatchInflight
	if c := cfg.Cluster; c != nil {
		if c.Name == "" {
			c.Name = "eventgate"
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsembed: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(logger{cfg.Logger}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: server not ready within %v", cfg.ReadyTimeout)
	}
	return &Server{ns: ns}, nil
}

// Connect opens an in-process connection to s (no socket), with opts.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	return nats.Connect(s.ns.ClientURL(), opts...)
}

// ClientURL is the URL clients on this machine connect to; it is only
// reachable when Config.Port was not 0.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// ClusterURL is the route URL other members list in Cluster.Routes; empty
// when the server is not in a cluster.
func (s *Server) ClusterURL() string {
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + a.String()
}

// JetStreamReady waits until JetStream can serve requests (in a cluster:
// a meta leader is elected), or ctx ends.
func (s *Server) JetStreamReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s.ns.JetStreamEnabled() && (!s.ns.JetStreamIsClustered() || s.ns.JetStreamIsCurrent()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsembed: JetStream not ready: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Shutdown stops the server and waits until it has stopped. Idempotent.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logger adapts slog to nats-server's Logger. The server's notices are
// its banner, startup lines and routine cluster news: debug level, so that
// the gateway's own first info line says where it listens.
type logger struct{ l *slog.Logger }

func (g logger) Noticef(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g logger) Warnf(format string, v ...any)   { g.l.Warn(fmt.Sprintf(format, v...)) }
func (g logger) Errorf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g logger) Fatalf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g logger) Debugf(format string, v ...any)  { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g logger) Tracef(format string, v ...any)  {}

// StartCluster starts len(dataDirs) servers named n0, n1, … that form a
// NATS cluster on 127.0.0.1, each with a free client port, and waits until
// JetStream is clustered or ctx ends. A JetStream cluster needs every route
// up front, so the route ports are picked first (a port could be taken
// between the pick and the bind: the start then fails). The cluster's name
// is name and a unique suffix, so that a route reaching a cluster of
// another process (whose server took a picked port) is refused instead of
// merging the two. On error the servers already started are shut down.
func StartCluster(ctx context.Context, name string, dataDirs []string) ([]*Server, error) {
	name += "-" + nuid.Next()
	ports := make([]int, len(dataDirs))
	routes := make([]string, len(dataDirs))
	var held []net.Listener // held until every port is picked, so none repeats
	var lc net.ListenConfig
	for i := range ports {
		l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			closeAll(held)
			return nil, fmt.Errorf("pick a route port: %w", err)
		}
		held = append(held, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
	}
	closeAll(held)
	return startMembers(ctx, name, dataDirs, ports, routes)
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// startMembers starts the cluster's servers on the picked route ports.
func startMembers(ctx context.Context, name string, dataDirs []string, ports []int, routes []string) ([]*Server, error) {
	var srv []*Server
	shutdown := func() {
		for _, s := range srv {
			s.Shutdown()
		}
	}
	for i, dir := range dataDirs {
		s, err := Start(Config{DataDir: dir, Name: fmt.Sprintf("n%d", i), Port: -1,
			Cluster: &Cluster{Name: name, Port: ports[i], Routes: routes}})
		if err != nil {
			shutdown()
			return nil, err
		}
		srv = append(srv, s)
	}
	for _, s := range srv {
		if err := s.JetStreamReady(ctx); err != nil {
			shutdown()
			return nil, err
		}
	}
	return srv, nil
}
