package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// gate is a backend whose requests wait until it is opened.
type gate struct {
	*httptest.Server
	open chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
		w.Write([]byte("done"))
	}))
	t.Cleanup(func() { g.release(); g.Close() })
	return g
}

func (g *gate) release()     { g.once.Do(func() { close(g.open) }) }
func (g *gate) Addr() string { return g.Listener.Addr().String() }

func TestConcurrencyLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		server   string
		route    string
		admin    string
		wantWait time.Duration // the shed request waited at least this long
		ready    int           // readiness while saturated
	}{
		{name: "route limit sheds at once", route: "max_concurrent_requests: 2", ready: 200},
		{name: "route queue waits, then sheds", route: "max_concurrent_requests: 2\nqueue: {size: 1, timeout: 150ms}", wantWait: 150 * time.Millisecond, ready: 200},
		{name: "global limit", server: "max_concurrent_requests: 2", ready: 200},
		{name: "adaptive limit at its ceiling", route: "max_concurrent_requests: 2\nadaptive_concurrency: {min_limit: 1, initial_limit: 2}", ready: 200},
		{name: "readiness turns 503 when saturated", route: "max_concurrent_requests: 2", admin: "ready_saturation_threshold: 1", ready: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be := newGate(t)
			route := "  - id: slow\n    uri: http://" + be.Addr() + "\n"
			for l := range strings.SplitSeq(tc.route, "\n") {
				if l != "" {
					route += "    " + l + "\n"
				}
			}
			g := gatewaytest.Start(t, "routes:\n"+route, gatewaytest.WithServer(tc.server), gatewaytest.WithAdmin(tc.admin))
			c := gatewaytest.Client(t)
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, body := gatewaytest.Get(t, g, "/held")
					if resp.StatusCode != 200 {
						t.Errorf("a request within the limit got %d %s", resp.StatusCode, body)
					}
				}()
			}
			if !gatewaytest.Eventually(3*time.Second, func() bool {
				_, m := adminGet(t, g, "/metrics")
				return strings.Contains(m, "sluice_saturation 1\n")
			}) {
				t.Fatal("saturation never reached 1")
			}
			if resp, _ := adminGet(t, g, "/healthz/ready"); resp.StatusCode != tc.ready {
				t.Errorf("ready: %d, want %d", resp.StatusCode, tc.ready)
			}
			if resp, _ := adminGet(t, g, "/healthz/live"); resp.StatusCode != 200 {
				t.Errorf("live: %d", resp.StatusCode)
			}
			start := time.Now()
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/more"), nil)
			resp, body := gatewaytest.Do(t, c, req)
			took := time.Since(start)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-Sluice-Reason") != "overloaded" {
				t.Errorf("over the limit: %d Retry-After=%q reason=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("X-Sluice-Reason"), body)
			}
			if took < tc.wantWait || took > tc.wantWait+time.Second {
				t.Errorf("shed after %v, want about %v", took, tc.wantWait)
			}
			be.release()
			wg.Wait()
			if resp, _ := adminGet(t, g, "/healthz/ready"); resp.StatusCode != 200 {
				t.Errorf("ready after the load: %d", resp.StatusCode)
			}
			if resp, _ := gatewaytest.Get(t, g, "/after"); resp.StatusCode != 200 {
				t.Errorf("after the load: %d", resp.StatusCode)
			}
		})
	}
}

// A route's limiter, with its adaptive state and counters, survives a reload
// that leaves its settings alone, and is replaced when they change.
func TestLimitersAcrossReload(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(routes string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(gatewaytest.Header("", 0)+gatewaytest.Dedent(routes)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
		routes:
		  - {id: kept, uri: "http://` + be.Addr() + `", predicates: ["Path=/k"], adaptive_concurrency: {}}
		  - {id: changed, uri: "http://` + be.Addr() + `", predicates: ["Path=/c"], max_concurrent_requests: 5}
		`)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.StartConfig(file, cfg, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })
	gatewaytest.Get(t, g, "/k")
	before := g.Runtime().RouteLimiters()
	write(`
		routes:
		  - {id: kept, uri: "http://` + be.Addr() + `", predicates: ["Path=/k"], adaptive_concurrency: {}}
		  - {id: changed, uri: "http://` + be.Addr() + `", predicates: ["Path=/c"], max_concurrent_requests: 6}
		  - {id: none, uri: "http://` + be.Addr() + `", predicates: ["Path=/n"]}
		`)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	after := g.Runtime().RouteLimiters()
	if after["kept"] != before["kept"] || after["kept"].Stats().Admitted != 1 {
		t.Errorf("the unchanged route's limiter was replaced")
	}
	if after["changed"] == before["changed"] || after["changed"].Limit() != 6 {
		t.Errorf("the changed route's limiter was kept")
	}
	if _, ok := after["none"]; ok {
		t.Errorf("a route without limits got a limiter")
	}
}
