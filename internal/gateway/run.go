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
	"github.com/sluice-gw/sluice/internal/discovery"
	"github.com/sluice-gw/sluice/internal/metrics"
	"github.com/sluice-gw/sluice/internal/overload"
	"github.com/sluice-gw/sluice/internal/proxy"
	"github.com/sluice-gw/sluice/internal/redisconn"
	"github.com/sluice-gw/sluice/internal/server"
	"github.com/sluice-gw/sluice/internal/tracing"
)

// Gateway is a running Sluice: listeners, admin port, the current runtime.
type Gateway struct {
	path  string
	log   *slog.Logger
	proxy *proxy.Handler
	// listeners are the proxy listeners, the primary (server.listen) first.
	listeners []*listener
	// listenerConfig is what they were started with: a reload cannot change it.
	listenerConfig []config.Listener
	admin          *admin.Admin
	adminLn        net.Listener
	adminSv        *http.Server
	drainer        *server.Drainer
	metrics        *metrics.Metrics
	spans          *tracing.Exporter // nil unless tracing.enabled
	reloads        *metrics.Reloads
	// stopWatch ends the config file watch.
	stopWatch chan struct{}

	mu      sync.Mutex // guards runtime
	runtime *Runtime
	// applyMu serialises reloads and the discovery locator's updates: data
	// is the file's contents in force, services the registry's services
	// its locator routes were made for.
	applyMu  sync.Mutex
	data     []byte
	services []string
	// lister follows the services of the locator's registry (listerMu).
	listerMu   sync.Mutex
	lister     *serviceLister
	listerStop bool
	drainCh    chan struct{}
	once       sync.Once
	stopOnce   sync.Once
}

// Start loads the config at path (native, or a Spring application.yml),
// binds the listeners and starts serving.
func Start(path string, log *slog.Logger) (*Gateway, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := load(path, data, log)
	if err != nil {
		return nil, err
	}
	return startConfig(path, cfg, data, log)
}

// StartConfig starts a gateway on an already parsed config. path is used for reloads.
func StartConfig(path string, cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	return startConfig(path, cfg, nil, log)
}

// startConfig is StartConfig with the file's contents cfg came from (nil:
// read the file again when the discovery locator needs it).
func startConfig(path string, cfg *config.Config, data []byte, log *slog.Logger) (*Gateway, error) {
	token, err := adminToken(cfg.Admin)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.Error())
	}
	rt, err := Build(cfg, nil)
	if err != nil {
		return nil, err
	}
	g := &Gateway{path: path, log: log, runtime: rt, drainCh: make(chan struct{}), metrics: metrics.New(), stopWatch: make(chan struct{}), data: data}
	g.reloads = metrics.NewReloads(g.metrics.Registry)
	g.proxy = &proxy.Handler{Log: log, Observer: g.metrics}
	if err := g.proxy.SetAccessLog(cfg.Log.AccessLog, cfg.Log.AccessFields, cfg.Log.AccessSample2xx); err != nil {
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
	g.listenerConfig = cfg.Server.AllListeners()
	tlsConfigs := map[*config.ServerTLS]*tls.Config{} // a listener that takes server.tls shares its certificates
	for _, l := range g.listenerConfig {
		lst, err := g.listen(l, tlsConfigs)
		if err != nil {
			releaseUnserved(g.listeners)
			Retire(rt, &Runtime{})
			return nil, err
		}
		g.listeners = append(g.listeners, lst)
	}
	servers := make([]*server.Server, len(g.listeners))
	liveListeners := make([]metrics.Listener, len(g.listeners))
	for i, l := range g.listeners {
		servers[i] = l.server
		liveListeners[i] = metrics.Listener{Name: l.name, Server: l.server}
	}
	live := &metrics.Live{
		Clusters:    func() []*cluster.Cluster { return g.Runtime().ClusterList() },
		DrainPhase:  func() int { return int(g.drainer.Phase()) },
		Listeners:   liveListeners,
		Global:      func() *overload.Limiter { return g.Runtime().global.get() },
		RouteLimits: func() map[string]*overload.Limiter { return g.Runtime().RouteLimiters() },
	}
	g.admin = &admin.Admin{
		Routes:                   g.routesJSON,
		Drain:                    g.Drain,
		Reload:                   g.Reload,
		Gatherer:                 g.metrics.Registry,
		Saturation:               live.Saturation,
		ReadySaturationThreshold: cfg.Admin.ReadySaturationThreshold,
		EjectedUntil:             g.ejectedUntil,
		Token:                    token,
		AllowedHosts:             cfg.Admin.AllowedHosts,
	}
	g.drainer = &server.Drainer{
		Delay:      cfg.Drain.Delay,
		Timeout:    cfg.Drain.Timeout,
		Servers:    servers,
		SetReady:   g.admin.SetReady,
		SetClosing: g.proxy.SetClosing,
		GoAway:     g.proxy.GoAway,
		Log:        log,
	}
	g.metrics.Registry.MustRegister(live)
	g.metrics.Registry.MustRegister(&metrics.Redis{Client: func() *redisconn.Client { return g.Runtime().Redis }})
	g.metrics.Registry.MustRegister(&metrics.Discovery{Sources: func() []*discovery.Stats { return g.Runtime().DiscoveryStats() }})
	if cfg.Admin.Listen != "" {
		g.adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			releaseUnserved(g.listeners)
			Retire(rt, &Runtime{})
			return nil, fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		g.adminSv = &http.Server{Handler: g.admin.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go g.adminSv.Serve(g.adminLn)
	}
	g.admin.SetReady(true)
	started := make([]listenerInfo, len(g.listeners))
	for i, l := range g.listeners {
		go func() {
			if err := l.server.Serve(); err != nil {
				log.Error("proxy listener failed", "listener", l.name, "error", err)
			}
		}()
		started[i] = listenerInfo{Name: l.name, Addr: l.server.Addr().String(), TLS: l.tls}
	}
	if cfg.Reload.Watch {
		go g.watch(cfg.Reload.Interval, g.stopWatch)
	}
	g.followServices(cfg.ServiceList)
	log.Info("sluice started", "listen", g.Addr(), "listeners", started, "admin", cfg.Admin.Listen, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	return g, nil
}

// listener is one bound proxy listener.
type listener struct {
	name   string // its metrics label
	tls    bool
	server *server.Server
}

// listenerInfo describes a listener in the start log.
type listenerInfo struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	TLS  bool   `json:"tls"`
}

// listen binds the proxy listener l. tlsConfigs holds the TLS configs made
// so far, by the config they were made from.
func (g *Gateway) listen(l config.Listener, tlsConfigs map[*config.ServerTLS]*tls.Config) (*listener, error) {
	opt := server.Options{
		Addr:              l.Listen,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		ReleaseIdleAfter:  l.ReleaseIdleAfter,
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		KeepAlive: net.KeepAliveConfig{Enable: l.KeepAlive.Enabled, Idle: l.KeepAlive.Idle,
			Interval: l.KeepAlive.Interval, Count: l.KeepAlive.Count},
		ReusePort:      true,
		MaxConnections: l.MaxConnections,
		H2C:            l.H2C,
	}
	if !l.KeepAlive.Enabled {
		opt.KeepAlive.Idle = -1 // no keepalive at all
	}
	listenPath := "server.listen" // the field in messages
	if l.Path != "server" {
		listenPath = l.Path + ".listen"
	}
	if t := l.TLS; t != nil {
		if opt.TLS = tlsConfigs[t]; opt.TLS == nil {
			var err error
			if opt.TLS, err = serverTLS(t, l.Path+".tls", g.log); err != nil {
				return nil, err
			}
			tlsConfigs[t] = opt.TLS
		}
	}
	s, err := server.Listen(opt, newListenerHandler(g.proxy, g.metrics, l), g.log)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", listenPath, l.Listen, err)
	}
	return &listener{name: l.Name, tls: l.TLS != nil, server: s}, nil
}

// releaseUnserved closes listeners that were bound but are not served yet
// (a later one failed to start): Serve after Shutdown returns at once and
// closes the listener.
func releaseUnserved(ls []*listener) {
	for _, l := range ls {
		l.server.Shutdown(context.Background())
		l.server.Serve()
	}
}

// listenerHandler is what one proxy listener serves: the gateway's one
// proxy, with the listener's own Keep-Alive hint and request counter.
type listenerHandler struct {
	proxy *proxy.Handler
	// keepAlive is the Keep-Alive header of HTTP/1.1 responses
	// ("timeout=75"), from the listener's idle timeout; "" = none.
	keepAlive string
	requests  *metrics.Downstream
	body      proxy.BodyLimits
}

func newListenerHandler(p *proxy.Handler, m *metrics.Metrics, l config.Listener) *listenerHandler {
	h := &listenerHandler{proxy: p, requests: m.Downstream(l.Name),
		body: proxy.BodyLimits{Timeout: l.BodyTimeout, MinRate: l.BodyMinRate, MinRateGrace: bodyMinRateGrace}}
	if l.IdleTimeout >= time.Second {
		// Tell HTTP/1.1 clients when this listener will close an idle
		// connection, so careful ones retire it first (as Sluice's own pools
		// do with their backends).
		h.keepAlive = fmt.Sprintf("timeout=%d", int(l.IdleTimeout/time.Second))
	}
	return h
}

// bodyMinRateGrace is how long a request body may arrive slower than
// body_min_rate at its start (Kestrel's grace period).
const bodyMinRateGrace = 5 * time.Second

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Request(r.Proto)
	if h.keepAlive != "" && r.ProtoMajor == 1 && !r.Close && !h.proxy.Closing() {
		w.Header().Set("Keep-Alive", h.keepAlive)
	}
	proxy.LimitBody(w, r, h.body)
	h.proxy.ServeHTTP(w, r)
}

// serverTLS makes the TLS config of a listener; path names t in messages
// ("server.tls", whose messages say so only for the client CA, as they
// always have, or "server.listeners[N].tls").
func serverTLS(t *config.ServerTLS, path string, log *slog.Logger) (*tls.Config, error) {
	named := func(err error) error {
		if path == "server.tls" {
			return err
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	files := make([]server.CertFiles, len(t.Certificates))
	for i, c := range t.Certificates {
		files[i] = server.CertFiles{CertFile: c.CertFile, KeyFile: c.KeyFile}
	}
	certs, err := server.LoadCerts(files, log)
	if err != nil {
		return nil, named(err)
	}
	var clientCAs *x509.CertPool
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, named(err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.client_ca_file %s: no PEM certificate found", path, t.ClientCAFile)
		}
	}
	min := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	return certs.TLSConfig(min, clientCAs), nil
}

// Addr is the primary proxy listener's address (server.listen).
func (g *Gateway) Addr() string { return g.listeners[0].server.Addr().String() }

// Addrs are the addresses of every proxy listener: the primary first, then
// server.listeners in file order.
func (g *Gateway) Addrs() []string {
	out := make([]string, len(g.listeners))
	for i, l := range g.listeners {
		out[i] = l.server.Addr().String()
	}
	return out
}

// ListenerAddr is the address of the proxy listener named name (its
// metrics label: its name, or its listen address as configured), or "".
func (g *Gateway) ListenerAddr(name string) string {
	for _, l := range g.listeners {
		if l.name == name {
			return l.server.Addr().String()
		}
	}
	return ""
}

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
	g.stopServices()
	// The drain's timings as the config in force says (a reload may have changed them).
	d := g.Runtime().Config.Drain
	g.drainer.Delay, g.drainer.Timeout = d.Delay, d.Timeout
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

// canonicalHeaders returns names in their canonical form.
func canonicalHeaders(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// adminToken reads the admin port's bearer token from admin.token_file or
// admin.token_env; "" when neither is set. One that is set but holds no
// token is an error: the port must not open unprotected by mistake.
func adminToken(a config.Admin) (string, error) {
	var token, from string
	switch {
	case a.TokenFile != "":
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return "", fmt.Errorf("admin.token_file: %w", err)
		}
		token, from = strings.TrimSpace(string(b)), "admin.token_file "+a.TokenFile
	case a.TokenEnv != "":
		token, from = strings.TrimSpace(os.Getenv(a.TokenEnv)), "admin.token_env $"+a.TokenEnv
	default:
		return "", nil
	}
	if token == "" {
		return "", fmt.Errorf("%s holds no token", from)
	}
	return token, nil
}
