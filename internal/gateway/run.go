package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/admin"
	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/metrics"
	"github.com/sluice-gw/sluice/internal/overload"
	"github.com/sluice-gw/sluice/internal/proxy"
	"github.com/sluice-gw/sluice/internal/redisconn"
	"github.com/sluice-gw/sluice/internal/server"
	"github.com/sluice-gw/sluice/internal/tracing"
)

// Gateway is a running Sluice: listeners, admin port, the current runtime.
type Gateway struct {
	path    string
	log     *slog.Logger
	proxy   *proxy.Handler
	server  *server.Server
	admin   *admin.Admin
	adminLn net.Listener
	adminSv *http.Server
	drainer *server.Drainer
	metrics *metrics.Metrics
	spans   *tracing.Exporter // nil unless tracing.enabled
	reloads *metrics.Reloads
	// stopWatch ends the config file watch.
	stopWatch chan struct{}

	mu       sync.Mutex // serialises reloads
	runtime  *Runtime
	drainCh  chan struct{}
	once     sync.Once
	stopOnce sync.Once
}

// Start loads the config at path (native, or a Spring application.yml),
// binds the listeners and starts serving.
func Start(path string, log *slog.Logger) (*Gateway, error) {
	cfg, err := load(path, log)
	if err != nil {
		return nil, err
	}
	return StartConfig(path, cfg, log)
}

// StartConfig starts a gateway on an already parsed config. path is used for reloads.
func StartConfig(path string, cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	rt, err := Build(cfg, nil)
	if err != nil {
		return nil, err
	}
	g := &Gateway{path: path, log: log, runtime: rt, drainCh: make(chan struct{}), metrics: metrics.New(cfg.Server.Listen), stopWatch: make(chan struct{})}
	g.reloads = metrics.NewReloads(g.metrics.Registry)
	g.proxy = &proxy.Handler{
		TrustedProxies: cfg.Server.TrustedProxies,
		Log:            log,
		AccessLog:      cfg.Log.AccessLog,
		Observer:       g.metrics,
		Limit: overload.New(overload.Options{Limit: cfg.Server.MaxConcurrentRequests,
			QueueSize: cfg.Server.Queue.Size, QueueTimeout: cfg.Server.Queue.Timeout}),
	}
	if err := g.proxy.SetAccessLog(cfg.Log.AccessFields, cfg.Log.AccessSample2xx); err != nil {
		Retire(rt, &Runtime{})
		return nil, err
	}
	if t := cfg.Tracing; t.Enabled {
		if g.spans, err = tracing.NewExporter(tracing.Options{Endpoint: t.Endpoint, SampleRatio: t.SampleRatio,
			ServiceName: t.ServiceName, BatchTimeout: t.BatchTimeout}); err != nil {
			Retire(rt, &Runtime{})
			return nil, fmt.Errorf("tracing: %w", err)
		}
		g.proxy.Spans = g.spans
	}
	g.proxy.SetTable(rt.Table)
	sopt := server.Options{
		Addr:              cfg.Server.Listen,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		KeepAlive: net.KeepAliveConfig{Enable: cfg.Server.KeepAlive.Enabled, Idle: cfg.Server.KeepAlive.Idle,
			Interval: cfg.Server.KeepAlive.Interval, Count: cfg.Server.KeepAlive.Count},
		ReusePort:      true,
		MaxConnections: cfg.Server.MaxConnections,
		H2C:            cfg.Server.H2C,
	}
	if !cfg.Server.KeepAlive.Enabled {
		sopt.KeepAlive.Idle = -1 // no keepalive at all
	}
	if t := cfg.Server.TLS; t != nil {
		if sopt.TLS, err = serverTLS(t, log); err != nil {
			Retire(rt, &Runtime{})
			return nil, err
		}
	}
	if cfg.Server.IdleTimeout >= time.Second {
		// Tell HTTP/1.1 clients when the gateway will close an idle
		// connection, so careful ones retire it first (as Sluice's own pools
		// do with their backends).
		g.proxy.KeepAlive = fmt.Sprintf("timeout=%d", int(cfg.Server.IdleTimeout/time.Second))
	}
	g.server, err = server.Listen(sopt, g.proxy, log)
	if err != nil {
		Retire(rt, &Runtime{})
		return nil, fmt.Errorf("server.listen %s: %w", cfg.Server.Listen, err)
	}
	live := &metrics.Live{
		Clusters:    func() []*cluster.Cluster { return g.Runtime().ClusterList() },
		DrainPhase:  func() int { return int(g.drainer.Phase()) },
		Listener:    cfg.Server.Listen,
		Server:      g.server,
		Global:      g.proxy.Limit,
		RouteLimits: func() map[string]*overload.Limiter { return g.Runtime().RouteLimiters() },
	}
	g.admin = &admin.Admin{
		Routes:                   g.routesJSON,
		Drain:                    g.Drain,
		Reload:                   g.Reload,
		Gatherer:                 g.metrics.Registry,
		Saturation:               live.Saturation,
		ReadySaturationThreshold: cfg.Admin.ReadySaturationThreshold,
	}
	g.drainer = &server.Drainer{
		Delay:      cfg.Drain.Delay,
		Timeout:    cfg.Drain.Timeout,
		Servers:    []*server.Server{g.server},
		SetReady:   g.admin.SetReady,
		SetClosing: g.proxy.SetClosing,
		GoAway:     g.proxy.GoAway,
		Log:        log,
	}
	g.metrics.Registry.MustRegister(live)
	g.metrics.Registry.MustRegister(&metrics.Redis{Client: func() *redisconn.Client { return g.Runtime().Redis }})
	if cfg.Admin.Listen != "" {
		g.adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			g.server.Shutdown(context.Background())
			Retire(rt, &Runtime{})
			return nil, fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		g.adminSv = &http.Server{Handler: g.admin.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go g.adminSv.Serve(g.adminLn)
	}
	g.admin.SetReady(true)
	go func() {
		if err := g.server.Serve(); err != nil {
			log.Error("proxy listener failed", "error", err)
		}
	}()
	if cfg.Reload.Watch {
		go g.watch(cfg.Reload.Interval, g.stopWatch)
	}
	log.Info("sluice started", "listen", g.server.Addr().String(), "admin", cfg.Admin.Listen, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	return g, nil
}

func serverTLS(t *config.ServerTLS, log *slog.Logger) (*tls.Config, error) {
	files := make([]server.CertFiles, len(t.Certificates))
	for i, c := range t.Certificates {
		files[i] = server.CertFiles{CertFile: c.CertFile, KeyFile: c.KeyFile}
	}
	certs, err := server.LoadCerts(files, log)
	if err != nil {
		return nil, err
	}
	var clientCAs *x509.CertPool
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls.client_ca_file %s: no PEM certificate found", t.ClientCAFile)
		}
	}
	min := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	return certs.TLSConfig(min, clientCAs), nil
}

// Addr is the proxy listener's address.
func (g *Gateway) Addr() string { return g.server.Addr().String() }

// AdminAddr is the admin listener's address ("" when disabled).
func (g *Gateway) AdminAddr() string {
	if g.adminLn == nil {
		return ""
	}
	return g.adminLn.Addr().String()
}

// Runtime returns the runtime in service.
func (g *Gateway) Runtime() *Runtime {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runtime
}

// Cluster returns the live cluster of an upstream (tests, discovery).
func (g *Gateway) Cluster(name string) *cluster.Cluster { return g.Runtime().Clusters[name] }

// Drain starts the drain protocol (idempotent); Wait returns when it ends.
func (g *Gateway) Drain() { g.once.Do(func() { close(g.drainCh) }) }

// Draining is closed once a drain was asked for.
func (g *Gateway) Draining() <-chan struct{} { return g.drainCh }

// Stop runs the drain protocol to the end and releases everything. force
// ends the waits early (a second signal).
func (g *Gateway) Stop(force context.Context) string {
	g.Drain()
	g.stopOnce.Do(func() { close(g.stopWatch) })
	summary := g.drainer.Run(force)
	if g.adminSv != nil {
		g.adminSv.Close()
	}
	Retire(g.Runtime(), &Runtime{})
	if g.spans != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		g.spans.Shutdown(ctx) // sends the spans not sent yet
		cancel()
	}
	return summary
}

// Run serves until ctx ends, then drains; force ends the drain early.
func Run(ctx, force context.Context, path string, log *slog.Logger) error {
	g, err := Start(path, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-g.Draining():
	}
	log.Info("drain started")
	summary := g.Stop(force)
	log.Info(summary)
	return nil
}

type routeInfo struct {
	ID         string   `json:"id"`
	URI        string   `json:"uri"`
	Upstream   string   `json:"upstream"`
	Order      int      `json:"order"`
	Predicates []string `json:"predicates"`
	Filters    []string `json:"filters"`
}

func (g *Gateway) routesJSON() any {
	cfg := g.Runtime().Config
	out := []routeInfo{}
	for _, r := range cfg.Routes {
		ri := routeInfo{ID: r.ID, URI: r.URI, Upstream: r.Upstream, Order: r.Order, Predicates: []string{}, Filters: []string{}}
		for _, p := range r.Predicates {
			ri.Predicates = append(ri.Predicates, describe(p))
		}
		for _, f := range r.Filters {
			ri.Filters = append(ri.Filters, describe(f))
		}
		out = append(out, ri)
	}
	return out
}

func describe(d config.Definition) string {
	s := d.Name
	if len(d.Positional) > 0 {
		s += "=" + strings.Join(d.Positional, ",")
	}
	for _, k := range slices.Sorted(maps.Keys(d.Named)) {
		s += " " + k + "=" + strings.Join(d.Named[k], ",")
	}
	return s
}
