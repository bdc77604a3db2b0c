// Package inproc runs Sluice inside the chaos tool's own process, as a
// chaos.Proxy that also takes endpoint updates (scenario 8, as Kubernetes
// discovery will make them) and speaks h2c upstream (scenario 9).
package inproc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/testkit/chaos"
)

// Sluice runs Sluice in this process with its shipped defaults: the config
// names only the listeners, the upstream's endpoints and one route.
type Sluice struct {
	// Pool, if set, is the upstream's pool block (YAML flow map); empty = defaults.
	Pool    string
	mu      sync.Mutex
	running map[string]*gateway.Gateway
}

func (p *Sluice) Name() string { return "sluice-inproc" }

func (p *Sluice) Start(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.start(upstreams, "", "")
}

func (p *Sluice) StartH2C(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.start(upstreams, "h2c", "")
}

// StartAdaptive runs Sluice with an adaptive concurrency limit on the route
// (scenario 16). The baseline's half-life is 5s instead of the default 30s,
// so that a scaled-down slow phase is long enough to show the limit growing
// back off its floor while the latency stays high.
func (p *Sluice) StartAdaptive(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.start(upstreams, "", fmt.Sprintf("    adaptive_concurrency: {min_limit: %d, max_limit: 500, initial_limit: 20, baseline_half_life: 5s}\n", chaos.AdaptiveFloor))
}

// ConcurrencyLimit returns the route's current limit.
func (p *Sluice) ConcurrencyLimit(addr string) (int, bool) {
	p.mu.Lock()
	g := p.running[addr]
	p.mu.Unlock()
	if g == nil {
		return 0, false
	}
	l := g.Runtime().RouteLimiters()["all"]
	if l == nil {
		return 0, false
	}
	return l.Limit(), true
}

func (p *Sluice) start(upstreams []string, protocol, routeExtra string) (string, func(), error) {
	var b strings.Builder
	b.WriteString("server: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	b.WriteString("drain: {delay: 0s, timeout: 5s}\nupstreams:\n  backend:\n")
	if protocol != "" {
		fmt.Fprintf(&b, "    protocol: %s\n", protocol)
	}
	if p.Pool != "" {
		fmt.Fprintf(&b, "    pool: %s\n", p.Pool)
	}
	b.WriteString("    endpoints: [")
	for i, u := range upstreams {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", u)
	}
	b.WriteString("]\nroutes:\n  - id: all\n    uri: lb://backend\n    predicates: [\"Path=/**\"]\n")
	b.WriteString(routeExtra)
	cfg, err := config.Parse("scenario.yaml", []byte(b.String()))
	if err != nil {
		return "", nil, err
	}
	var log *slog.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SLUICE_SCENARIO_LOG") != "" {
		log = slog.New(failures{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})})
	}
	g, err := gateway.StartConfig("scenario.yaml", cfg, log)
	if err != nil {
		return "", nil, err
	}
	addr := g.Addr()
	p.mu.Lock()
	if p.running == nil {
		p.running = map[string]*gateway.Gateway{}
	}
	p.running[addr] = g
	p.mu.Unlock()
	stop := func() {
		p.mu.Lock()
		delete(p.running, addr)
		p.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g.Stop(ctx)
	}
	return addr, stop, nil
}

// SetEndpoints maps EndpointSlice conditions as discovery will: ready →
// ready; serving && terminating → draining; otherwise gone.
func (p *Sluice) SetEndpoints(addr string, eps []chaos.Endpoint) error {
	p.mu.Lock()
	g := p.running[addr]
	p.mu.Unlock()
	if g == nil {
		return fmt.Errorf("no sluice at %s", addr)
	}
	var specs []endpoint.Spec
	for _, e := range eps {
		switch {
		case e.Ready:
			specs = append(specs, endpoint.Spec{Addr: e.Addr})
		case e.Serving && e.Terminating:
			specs = append(specs, endpoint.Spec{Addr: e.Addr, Draining: true})
		}
	}
	g.Cluster("backend").SetEndpoints(specs)
	return nil
}

// failures passes on only the access-log lines of failed requests, and of
// requests slower than a second (set
// SLUICE_SCENARIO_LOG=1 to see why a scenario's requests failed).
type failures struct{ slog.Handler }

func (f failures) Handle(ctx context.Context, r slog.Record) error {
	failed := r.Message != "access"
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" && a.Value.Int64() >= 400 || a.Key == "duration" && a.Value.Duration() > time.Second {
			failed = true
		}
		return true
	})
	if !failed {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}
