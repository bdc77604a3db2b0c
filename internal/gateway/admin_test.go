package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

func adminGet(t *testing.T, g *gateway.Gateway, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.AdminAddr()+path, nil)
	resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
	return resp, string(body)
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		upstreams:
		  backend:
		    endpoints: [`+be.Addr()+`]
		routes:
		  - id: api
		    uri: lb://backend
		    predicates: [Path=/api/**, Method=GET]
		    filters: [StripPrefix=1]
		  - id: other
		    uri: lb://backend
		`)
	if resp, body := gatewaytest.Get(t, g, "/api/x"); resp.StatusCode != 200 {
		t.Fatalf("proxy: got %d %q", resp.StatusCode, body)
	}

	tests := []struct {
		name     string
		path     string
		status   int
		contains []string
	}{
		{name: "live", path: "/healthz/live", status: 200, contains: []string{"ok"}},
		{name: "ready", path: "/healthz/ready", status: 200, contains: []string{"ok"}},
		{name: "metrics", path: "/metrics", status: 200, contains: []string{
			`sluice_requests_total{class="2xx",reason="",route="api",upstream="backend"} 1`,
			`sluice_upstream_connections{endpoint="` + be.Addr() + `",state="open",upstream="backend"} 1`,
			`sluice_upstream_connections{endpoint="` + be.Addr() + `",state="idle",upstream="backend"} 1`,
		}},
		{name: "pprof index", path: "/debug/pprof/", status: 200, contains: []string{"goroutine"}},
		{name: "unknown path", path: "/nope", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := adminGet(t, g, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: no %q in:\n%s", tc.path, s, grepLines(body, "sluice_"))
				}
			}
		})
	}

	t.Run("config routes", func(t *testing.T) {
		resp, body := adminGet(t, g, "/config/routes")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var routes []struct {
			ID         string   `json:"id"`
			Upstream   string   `json:"upstream"`
			Predicates []string `json:"predicates"`
			Filters    []string `json:"filters"`
		}
		if err := json.Unmarshal([]byte(body), &routes); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if len(routes) != 2 {
			t.Fatalf("got %d routes, want 2: %s", len(routes), body)
		}
		api, other := routes[0], routes[1]
		if api.ID != "api" || api.Upstream != "backend" ||
			!slices.Equal(api.Predicates, []string{"Path=/api/**", "Method=GET"}) || !slices.Equal(api.Filters, []string{"StripPrefix=1"}) {
			t.Errorf("first route %+v", api)
		}
		if other.ID != "other" || other.Upstream != "backend" || len(other.Predicates) != 0 {
			t.Errorf("second route %+v", other)
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDrain checks that readiness fails as soon as a drain starts, while the
// proxy keeps serving through drain.delay, and that the proxy port closes at
// the end.
func TestDrain(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	// A long delay, ended early by cancelling force once the checks are done.
	g := gatewaytest.Start(t, "routes:\n  - id: r\n    uri: http://"+be.Addr()+"\n", gatewaytest.WithDrainDelay(10*time.Second))
	if resp, _ := adminGet(t, g, "/healthz/ready"); resp.StatusCode != 200 {
		t.Fatalf("ready before drain: %d", resp.StatusCode)
	}
	force, cancel := context.WithCancel(context.Background())
	defer cancel()
	g.Drain()
	select {
	case <-g.Draining():
	default:
		t.Fatal("Draining is not closed after Drain")
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		g.Stop(force)
	}()
	ready := func() int {
		resp, err := gatewaytest.Client(t).Get("http://" + g.AdminAddr() + "/healthz/ready")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if !gatewaytest.Eventually(2*time.Second, func() bool { return ready() == http.StatusServiceUnavailable }) {
		t.Fatalf("ready still answers %d after the drain started", ready())
	}
	if resp, body := gatewaytest.Get(t, g, "/during-drain"); resp.StatusCode != 200 {
		t.Errorf("proxy during drain.delay: %d %q, want 200", resp.StatusCode, body)
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned before drain.delay passed")
	default:
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after force was cancelled")
	}
	_, err := gatewaytest.Client(t).Get(gatewaytest.URL(g, "/after"))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("proxy after Stop: %v, want connection refused", err)
	}
}

// TestReload checks that a reload swaps routes in, keeps unchanged upstreams
// with their connection pools, and that an invalid file changes nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	a := gatewaytest.NewEcho(t, "a")
	b := gatewaytest.NewEcho(t, "b")
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(routes string) {
		t.Helper()
		data := gatewaytest.Header("", 0) + gatewaytest.Dedent(`
			upstreams:
			  a: {endpoints: [`+a.Addr()+`]}
			  b: {endpoints: [`+b.Addr()+`]}
			`) + gatewaytest.Dedent(routes)
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
		routes:
		  - {id: r, uri: "lb://a"}
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
	backend := func() string {
		resp, body := gatewaytest.Get(t, g, "/")
		if resp.StatusCode != 200 {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		return resp.Header.Get("X-Backend")
	}
	if got := backend(); got != "a" {
		t.Fatalf("before reload: backend %q, want a", got)
	}
	clusterA := g.Cluster("a")

	write(`
		routes:
		  - {id: r, uri: "lb://b"}
		`)
	if err := g.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := backend(); got != "b" {
		t.Errorf("after reload: backend %q, want b", got)
	}
	if g.Cluster("a") != clusterA {
		t.Errorf("the unchanged upstream a was rebuilt by the reload")
	}

	write(`
		routes:
		  - {id: r, uri: "lb://missing"}
		`)
	resp, err := http.Post("http://"+g.AdminAddr()+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("POST /reload of an invalid file: %d, want 422", resp.StatusCode)
	}
	if got := backend(); got != "b" {
		t.Errorf("after a rejected reload: backend %q, want b", got)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
