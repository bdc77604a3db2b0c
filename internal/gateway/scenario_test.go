package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/internal/chaos"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/endpoint"
)

func TestMain(m *testing.M) {
	chaos.RunBackendIfChild() // the chaos scenarios start backends as processes of this binary
	os.Exit(m.Run())
}

// inproc runs Sluice in this process with its shipped defaults: the config
// names only the listeners, the upstream's endpoints and one route.
type inproc struct {
	// pool, if set, is the upstream's pool block (YAML flow map); empty = defaults.
	pool    string
	mu      sync.Mutex
	running map[string]*Gateway
}

func (p *inproc) Name() string { return "sluice" }

func (p *inproc) Start(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.start(upstreams, "")
}

func (p *inproc) StartH2C(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.start(upstreams, "h2c")
}

func (p *inproc) start(upstreams []string, protocol string) (string, func(), error) {
	var b strings.Builder
	b.WriteString("server: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n")
	b.WriteString("drain: {delay: 0s, timeout: 5s}\nupstreams:\n  backend:\n")
	if protocol != "" {
		fmt.Fprintf(&b, "    protocol: %s\n", protocol)
	}
	if p.pool != "" {
		fmt.Fprintf(&b, "    pool: %s\n", p.pool)
	}
	b.WriteString("    endpoints: [")
	for i, u := range upstreams {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", u)
	}
	b.WriteString("]\nroutes:\n  - id: all\n    uri: lb://backend\n    predicates: [\"Path=/**\"]\n")
	cfg, err := config.Parse("scenario.yaml", []byte(b.String()))
	if err != nil {
		return "", nil, err
	}
	var log *slog.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SLUICE_SCENARIO_LOG") != "" {
		log = slog.New(failures{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})})
	}
	g, err := StartConfig("scenario.yaml", cfg, log)
	if err != nil {
		return "", nil, err
	}
	addr := g.Addr()
	p.mu.Lock()
	if p.running == nil {
		p.running = map[string]*Gateway{}
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
func (p *inproc) SetEndpoints(addr string, eps []chaos.Endpoint) error {
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

// TestScenarios runs failure scenarios 1–11 of ../shared/SCENARIOS.md
// against Sluice with its shipped defaults: real backends (processes where a
// process must be signalled), relays adding 1–5 ms each way, an open-loop
// client counting every error, truncated body and duplicate POST.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("scenarios take about two minutes")
	}
	for _, s := range chaos.Scenarios() {
		t.Run(fmt.Sprintf("%02d_%s", s.ID, strings.ReplaceAll(s.Name, " ", "_")), func(t *testing.T) {
			p := &inproc{}
			if s.ID == 10 {
				// Rotation is judged relative to the connection age: with the
				// default 60s it would need a two-minute test. Everything else
				// is the shipped default.
				p.pool = "{max_lifetime: 3s}"
			}
			res := chaos.Run(context.Background(), chaos.Config{}, s, p)
			t.Logf("%s: sent=%d ok=%d errors=%s dupPOST=%d lostPOST=%d droppedPOST=%d failedPOSTprocessed=%d retriedGET=%d %s (%v)",
				res.Verdict(), res.Sent, res.OK, res.ErrorSummary(), res.DupPOSTs, res.LostPOSTs, res.DroppedPOSTs, res.FailedPOSTsProcessed,
				res.RetriedGETs, strings.Join(res.Notes, "; "), res.Elapsed.Round(100_000_000))
			switch res.Verdict() {
			case "pass":
			case "skip":
				t.Skipf("skipped: %s", res.Skipped)
			default:
				t.Errorf("scenario %d %s: %s (err=%v)", s.ID, s.Name, res.Verdict(), res.Err)
			}
		})
	}
}

// failures passes on only the access-log lines of failed requests (set
// SLUICE_SCENARIO_LOG=1 to see why a scenario's requests failed).
type failures struct{ slog.Handler }

func (f failures) Handle(ctx context.Context, r slog.Record) error {
	failed := r.Message != "access"
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" && a.Value.Int64() >= 400 {
			failed = true
		}
		return true
	})
	if !failed {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}
