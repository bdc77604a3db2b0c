// Package gateway is the composition root: it turns a Config into the live
// objects of the data path (routes, filter chains, clusters, pools) and runs
// them. It is the only package that sees both the config and the data path.
package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/sluice-gw/sluice/internal/balance"
	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/discovery"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/filter/builtin"
	"github.com/sluice-gw/sluice/internal/health"
	"github.com/sluice-gw/sluice/internal/overload"
	"github.com/sluice-gw/sluice/internal/pool"
	"github.com/sluice-gw/sluice/internal/proxy"
	"github.com/sluice-gw/sluice/internal/redisconn"
	"github.com/sluice-gw/sluice/internal/route"
)

// Runtime is what one config built: the routing table and the clusters.
type Runtime struct {
	Config   *config.Config
	Table    *proxy.Table
	Clusters map[string]*cluster.Cluster
	// defs remembers each cluster's definition, to keep unchanged clusters across reloads.
	defs map[string]*config.Upstream
	// checkers run the active health checks of the clusters that have them.
	checkers map[string]*health.Checker
	// limiters are the routes' concurrency limits by route id, kept across
	// reloads while their settings do not change.
	limiters map[string]*routeLimiter
	// global is the gateway-wide concurrency limit (server.max_concurrent_requests),
	// kept across reloads while its settings do not change.
	global *routeLimiter
	// Redis is the shared Redis client (nil without a redis block), kept
	// across reloads while its settings do not change.
	Redis *redisconn.Client
	// sources run the discovery of the clusters that have it.
	sources map[string]*discovery.Running
	// registries keep each upstream's live endpoints by address, across
	// the clusters reloads make for it.
	registries map[string]*cluster.Registry
}

// ClusterList returns the clusters sorted by name.
func (rt *Runtime) ClusterList() []*cluster.Cluster {
	names := make([]string, 0, len(rt.Clusters))
	for n := range rt.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*cluster.Cluster, len(names))
	for i, n := range names {
		out[i] = rt.Clusters[n]
	}
	return out
}

// Build compiles cfg. Clusters of prev whose definition did not change are
// kept as they are (pools, health, counters); the caller drains the others
// once the new runtime is in service (see Retire). Every problem is reported
// as config.Errors, positioned in the file.
func Build(cfg *config.Config, prev *Runtime) (*Runtime, error) { return build(cfg, prev, true) }

// Validate builds cfg without starting anything (no health checks), reports
// what Build would, and releases what it built.
func Validate(cfg *config.Config) error {
	rt, err := build(cfg, nil, false)
	if err != nil {
		return err
	}
	Retire(rt, &Runtime{})
	return nil
}

func build(cfg *config.Config, prev *Runtime, live bool) (*Runtime, error) {
	var errs config.Errors
	rt := &Runtime{Config: cfg, Clusters: map[string]*cluster.Cluster{}, defs: map[string]*config.Upstream{}, checkers: map[string]*health.Checker{},
		limiters: map[string]*routeLimiter{}, sources: map[string]*discovery.Running{}, registries: map[string]*cluster.Registry{}}
	for name, u := range cfg.Upstreams {
		rt.registries[name] = cluster.NewRegistry()
		if prev != nil && prev.registries[name] != nil {
			rt.registries[name] = prev.registries[name]
		}
		if prev != nil {
			if old, ok := prev.defs[name]; ok && reflect.DeepEqual(stripLoc(old), stripLoc(u)) {
				rt.Clusters[name] = prev.Clusters[name]
				rt.defs[name] = u
				if hc := prev.checkers[name]; hc != nil {
					rt.checkers[name] = hc
				}
				if src := prev.sources[name]; src != nil {
					rt.sources[name] = src
				}
				continue
			}
		}
		c, err := newCluster(name, u, rt.registries[name])
		if err != nil {
			errs = append(errs, cfg.Errorf(u.Pos, u.Path, "%v", err))
			continue
		}
		rt.Clusters[name] = c
		rt.defs[name] = u
		if u.Discovery != nil && live {
			src, err := newSource(name, u.Discovery)
			if err != nil {
				errs = append(errs, cfg.Errorf(u.Pos, u.Path+".discovery", "%v", err))
				continue
			}
			rt.sources[name] = discovery.Start(src, publisher(name, c))
		}
		if hc := u.HealthCheck; hc != nil && live {
			scheme := "http"
			if u.TLS != nil {
				scheme = "https"
			}
			ranges := hc.ExpectedStatuses
			rt.checkers[name] = health.Start(c, health.Options{
				Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout,
				HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold,
				Scheme: scheme,
				Expected: func(code int) bool {
					for _, r := range ranges {
						if r.Contains(code) {
							return true
						}
					}
					return false
				},
			})
		}
	}

	var rerr *config.Error
	if rt.Redis, rerr = redisClient(cfg, prev); rerr != nil {
		errs = append(errs, rerr)
	}
	preds := route.Predicates()
	filters := builtin.Filters()
	env := &route.Env{TrustedProxies: cfg.Server.TrustedProxies, HostIncludePort: cfg.Server.HostIncludePort}
	table := &proxy.Table{TrustedProxies: cfg.Server.TrustedProxies, UntrustedHeaders: canonicalHeaders(cfg.Server.UntrustedHeaders)}
	var prevGlobal *routeLimiter
	if prev != nil {
		prevGlobal = prev.global
	}
	rt.global = keepLimiter(overload.Options{Limit: cfg.Server.MaxConcurrentRequests,
		QueueSize: cfg.Server.Queue.Size, QueueTimeout: cfg.Server.Queue.Timeout}, nil, prevGlobal)
	table.Limit = rt.global.get()
	global, gerrs := globalFilters(cfg)
	errs = append(errs, gerrs...)
	errs = append(errs, checkForwards(cfg)...)
	defaults, ferrs := buildFilters(cfg, cfg.DefaultFilters, filters, withRedis(filterEnv(cfg, "", table), rt.Redis))
	errs = append(errs, ferrs...)
	var routes []route.Route
	for _, r := range cfg.Routes {
		env.RouteID = r.ID
		rr := route.Route{ID: r.ID, Order: r.Order}
		for _, d := range r.Predicates {
			f, ok := preds[d.Name]
			if !ok {
				errs = append(errs, cfg.Errorf(d.Pos, d.Path, "unknown predicate %q%s", d.Name, suggest(d.Name, keys(preds))))
				continue
			}
			a, err := d.Bind(f.Fields)
			if err == nil {
				var p route.Predicate
				if p, err = f.New(a, env); err == nil {
					rr.Predicates = append(rr.Predicates, p)
					continue
				}
			}
			errs = append(errs, cfg.Errorf(d.Pos, d.Path, "%s: %v", d.Name, err))
		}
		own, ferrs := buildFilters(cfg, r.Filters, filters, withRedis(filterEnv(cfg, r.ID, table), rt.Redis))
		errs = append(errs, ferrs...)
		c := rt.Clusters[r.Upstream]
		policy := &cluster.Policy{
			Attempts:           r.Retry.Attempts,
			ResponseTimeout:    r.ResponseTimeout,
			PerTryTimeout:      r.Retry.PerTryTimeout,
			BackoffBase:        r.Retry.Backoff.Base,
			BackoffMax:         r.Retry.Backoff.Max,
			Statuses:           r.Retry.Statuses,
			RetryNonIdempotent: r.Retry.RetryNonIdempotent,
			IdempotencyKey:     r.Retry.IdempotencyKey,
			BufferLimit:        r.Retry.BufferLimit,
			Budget:             cluster.NewBudget(r.Retry.BudgetPercent, r.Retry.MinRetries),
		}
		chain := filter.Chain(applyRetriers(slices.Concat(global.forRoute(cfg.DefaultFilters, r.Filters), defaults, own), policy), &proxy.Forward{Cluster: c, Policy: policy, Prefix: cfg.Server.ForwardedPrefix})
		lim := buildLimiter(r, prev)
		if lim != nil {
			rt.limiters[r.ID] = lim
		}
		rr.Upstream, rr.Chain, rr.MaxBodySize, rr.Limit, rr.Body = r.Upstream, chain, r.MaxBodySize, lim.get(), routeBody(r)
		routes = append(routes, rr)
	}
	if len(errs) == 0 {
		m, err := route.NewTable(routes)
		if err != nil {
			errs = append(errs, cfg.Errorf(config.Pos{Line: 1, Col: 1}, "routes", "%v", err))
		}
		table.Match = m
	}
	if len(errs) > 0 {
		// Clusters made for this build were never used: release them.
		for name, c := range rt.Clusters {
			if prev == nil || prev.Clusters[name] != c {
				if src := rt.sources[name]; src != nil {
					src.Stop()
				}
				if hc := rt.checkers[name]; hc != nil {
					hc.Stop()
				}
				c.Close()
			}
		}
		if rt.Redis != nil && (prev == nil || prev.Redis != rt.Redis) {
			rt.Redis.Close()
		}
		return nil, errs
	}
	rt.Table = table
	return rt, nil
}

// routeLimiter is a route's concurrency limit and the options it was made with.
type routeLimiter struct {
	opt overload.Options
	adp overload.Adaptive
	l   *overload.Limiter
}

func (rl *routeLimiter) get() *overload.Limiter {
	if rl == nil {
		return nil
	}
	return rl.l
}

// buildLimiter returns the route's limiter: prev's if its settings are the
// same (its adaptive limit and counters go on), a new one otherwise, nil when
// the route has no limit.
func buildLimiter(r *config.Route, prev *Runtime) *routeLimiter {
	var old *routeLimiter
	if prev != nil {
		old = prev.limiters[r.ID]
	}
	return keepLimiter(overload.Options{Limit: r.MaxConcurrentRequests, QueueSize: r.Queue.Size, QueueTimeout: r.Queue.Timeout},
		r.AdaptiveConcurrency, old)
}

// keepLimiter returns old if it was made with the same settings, a new
// limiter otherwise, nil for no limit.
func keepLimiter(opt overload.Options, a *config.AdaptiveConcurrency, old *routeLimiter) *routeLimiter {
	rl := &routeLimiter{opt: opt}
	if a != nil {
		rl.adp = overload.Adaptive{MinLimit: a.MinLimit, MaxLimit: a.MaxLimit, InitialLimit: a.InitialLimit,
			Tolerance: a.Tolerance, Window: a.Window, BaselineHalfLife: a.BaselineHalfLife}
	}
	if old != nil && old.opt.Limit == rl.opt.Limit && old.opt.QueueSize == rl.opt.QueueSize &&
		old.opt.QueueTimeout == rl.opt.QueueTimeout && old.adp == rl.adp && (a != nil) == (old.opt.Adaptive != nil) {
		return old
	}
	if a != nil {
		adp := rl.adp
		rl.opt.Adaptive = &adp
	}
	if rl.l = overload.New(rl.opt); rl.l == nil {
		return nil
	}
	return rl
}

// RouteLimiters returns the routes' concurrency limits by route id.
func (rt *Runtime) RouteLimiters() map[string]*overload.Limiter {
	out := make(map[string]*overload.Limiter, len(rt.limiters))
	for id, rl := range rt.limiters {
		out[id] = rl.l
	}
	return out
}

// CheckDefinitions reports the predicates and filters of cfg that do not
// exist or do not accept their arguments, without building anything else.
// It runs on configs that have other problems too (sluice validate).
func CheckDefinitions(cfg *config.Config) config.Errors {
	preds := route.Predicates()
	filters := builtin.Filters()
	_, errs := globalFilters(cfg)
	rc, rerr := redisClient(cfg, nil) // does not connect
	if rerr != nil {
		errs = append(errs, rerr)
	}
	if rc != nil {
		defer rc.Close()
	}
	table := &proxy.Table{} // never used: nothing runs
	_, ferrs := buildFilters(cfg, cfg.DefaultFilters, filters, withRedis(filterEnv(cfg, "", table), rc))
	errs = append(errs, ferrs...)
	env := &route.Env{TrustedProxies: cfg.Server.TrustedProxies, HostIncludePort: cfg.Server.HostIncludePort}
	for _, r := range cfg.Routes {
		env.RouteID = r.ID
		for _, d := range r.Predicates {
			if err := checkPredicate(cfg, preds, d, env); err != nil {
				errs = append(errs, err)
			}
		}
		_, ferrs := buildFilters(cfg, r.Filters, filters, withRedis(filterEnv(cfg, r.ID, table), rc))
		errs = append(errs, ferrs...)
	}
	return append(errs, checkForwards(cfg)...)
}

func checkPredicate(cfg *config.Config, preds map[string]route.Factory, d config.Definition, env *route.Env) *config.Error {
	f, ok := preds[d.Name]
	if !ok {
		return cfg.Errorf(d.Pos, d.Path, "unknown predicate %q%s", d.Name, suggest(d.Name, keys(preds)))
	}
	a, err := d.Bind(f.Fields)
	if err == nil {
		_, err = f.New(a, env)
	}
	if err != nil {
		return cfg.Errorf(d.Pos, d.Path, "%s: %v", d.Name, err)
	}
	return nil
}

// Retire drains the clusters of old that next no longer uses.
func Retire(old, next *Runtime) {
	if old == nil {
		return
	}
	for name, c := range old.Clusters {
		if next.Clusters[name] != c {
			// Stop discovery first: it must not publish into a closed cluster.
			if src := old.sources[name]; src != nil {
				src.Stop()
			}
			if hc := old.checkers[name]; hc != nil {
				hc.Stop()
			}
			c.Close()
		}
	}
	if old.Redis != nil && old.Redis != next.Redis {
		old.Redis.Close()
	}
}

func buildFilters(cfg *config.Config, defs []config.Definition, reg map[string]filter.Factory, env *filter.Env) ([]filter.Filter, config.Errors) {
	var out []filter.Filter
	var errs config.Errors
	for _, d := range defs {
		f, ok := reg[d.Name]
		if !ok {
			errs = append(errs, cfg.Errorf(d.Pos, d.Path, "unknown filter %q%s", d.Name, suggest(d.Name, keys(reg))))
			continue
		}
		a, err := d.Bind(f.Fields)
		if err == nil {
			var fl filter.Filter
			if fl, err = f.New(a, env); err == nil {
				out = append(out, fl)
				continue
			}
		}
		errs = append(errs, cfg.Errorf(d.Pos, d.Path, "%s: %v", d.Name, err))
	}
	return out, errs
}

func newCluster(name string, u *config.Upstream, reg *cluster.Registry) (*cluster.Cluster, error) {
	picker, err := balance.New(u.Balancer, u.HashOn.String())
	if err != nil {
		return nil, err
	}
	proto := pool.HTTP1
	switch u.Protocol {
	case "h2":
		proto = pool.H2
	case "h2c":
		proto = pool.H2C
	}
	var tcfg *tls.Config
	if u.TLS != nil {
		if tcfg, err = tlsConfig(u.TLS); err != nil {
			return nil, err
		}
	}
	popt := pool.Options{
		Protocol:           proto,
		ConnectTimeout:     u.ConnectTimeout,
		MaxIdleTime:        u.Pool.MaxIdleTime,
		MaxLifetime:        u.Pool.MaxLifetime,
		MaxConnections:     u.Pool.MaxConnections,
		MaxRequestsPerConn: u.Pool.MaxRequestsPerConnection,
	}
	c := cluster.New(cluster.Options{
		Name:   name,
		Picker: picker,
		NewPool: func(addr string) *pool.Pool {
			o := popt
			o.Addr = addr
			if tcfg != nil {
				t := tcfg.Clone()
				if t.ServerName == "" {
					t.ServerName, _, _ = net.SplitHostPort(addr)
				}
				o.TLS = t
			}
			return pool.New(o)
		},
		PoolKey:             poolKey{Protocol: u.Protocol, ConnectTimeout: u.ConnectTimeout, Pool: u.Pool, TLS: deref(u.TLS), HasTLS: u.TLS != nil},
		Registry:            reg,
		SlowStart:           u.SlowStart,
		ConsecutiveFailures: u.OutlierDetection.ConsecutiveFailures,
		BaseEjection:        u.OutlierDetection.BaseEjectionTime,
		MaxEjectionPercent:  u.OutlierDetection.MaxEjectionPercent,
	})
	specs := make([]endpoint.Spec, len(u.Endpoints))
	for i, e := range u.Endpoints {
		specs[i] = endpoint.Spec{Addr: e.Address, Weight: e.Weight}
	}
	c.SetEndpoints(specs)
	return c, nil
}

// poolKey is what an upstream's pools are made from: an endpoint that
// stays through a reload keeps its pool only while this is unchanged.
type poolKey struct {
	Protocol       string
	ConnectTimeout time.Duration
	Pool           config.Pool
	TLS            config.TLS
	HasTLS         bool
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

func tlsConfig(t *config.TLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// stripLoc returns u without its position, for comparing definitions.
func stripLoc(u *config.Upstream) config.Upstream {
	c := *u
	c.Pos = config.Pos{}
	c.Path = ""
	return c
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// suggest returns " (did you mean X?)" for the closest known name, if close.
func suggest(name string, known []string) string {
	if s := config.Suggest(name, known); s != "" {
		return " (did you mean " + s + "?)"
	}
	return ""
}

// routeBody is a route's change to its listener's body limits; nil when it
// sets none.
func routeBody(r *config.Route) *route.BodyLimits {
	if r.BodyTimeout == nil && r.BodyMinRate == nil {
		return nil
	}
	return &route.BodyLimits{Timeout: r.BodyTimeout, MinRate: r.BodyMinRate}
}
