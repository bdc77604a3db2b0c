package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/config/scg"
	"github.com/sluice-gw/sluice/internal/filter/builtin"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/route"
)

// TestSpringImportEndToEnd runs the gateway on a Spring Cloud Gateway
// application.yml, unchanged, with its backends and ports taken from the
// environment through ${VAR:default} placeholders, and proxies requests.
func TestSpringImportEndToEnd(t *testing.T) {
	catalog := gatewaytest.NewEcho(t, "catalog")
	legacy := gatewaytest.NewEcho(t, "legacy")
	t.Setenv("SERVER_PORT", "0")
	t.Setenv("MANAGEMENT_PORT", "0")
	t.Setenv("CATALOG_URI", "http://"+catalog.Addr())
	t.Setenv("LEGACY_URI", "http://"+legacy.Addr())

	var logs gatewaytest.SafeBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	g, err := gateway.Start("../config/scg/testdata/e2e-application.yml", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })

	tests := []struct {
		name        string
		method      string
		path        string
		header      http.Header
		wantStatus  int
		wantBackend string
		wantPath    string
		wantHeader  map[string]string // sent to the backend; "" = absent
	}{
		{name: "lb route, StripPrefix and expanded AddRequestHeader", method: "GET", path: "/shop/catalog/items",
			wantStatus: 200, wantBackend: "catalog", wantPath: "/catalog/items", wantHeader: map[string]string{"X-Gateway": "sluice"}},
		{name: "Method predicate rejects POST", method: "POST", path: "/shop/catalog/items", wantStatus: 404},
		{name: "direct route from a placeholder, PrefixPath, RemoveRequestHeader", method: "GET", path: "/legacy/a",
			header: http.Header{"Cookie": {"session=1"}}, wantStatus: 200, wantBackend: "legacy", wantPath: "/v1/legacy/a",
			wantHeader: map[string]string{"Cookie": ""}},
	}
	client := gatewaytest.Client(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, gatewaytest.URL(g, tc.path), nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, body := gatewaytest.Do(t, client, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != 200 {
				return
			}
			// default-filters, with ${spring.application.name} resolved from the file
			if got := resp.Header.Get("X-Served-By"); got != "shop-gateway" {
				t.Errorf("X-Served-By %q, want shop-gateway", got)
			}
			if got := resp.Header.Get("X-Backend"); got != tc.wantBackend {
				t.Errorf("backend %q, want %q", got, tc.wantBackend)
			}
			seen := gatewaytest.DecodeSeen(t, body)
			if seen.Path != tc.wantPath {
				t.Errorf("backend saw %q, want %q", seen.Path, tc.wantPath)
			}
			for k, want := range tc.wantHeader {
				if got := strings.Join(seen.Header[http.CanonicalHeaderKey(k)], ","); got != want {
					t.Errorf("backend saw %s %q, want %q", k, got, want)
				}
			}
		})
	}

	t.Run("httpclient and metadata settings reach the upstreams and routes", func(t *testing.T) {
		cfg := g.Runtime().Config
		lb := cfg.Upstreams["catalog-service"]
		direct := cfg.Upstreams["http://"+legacy.Addr()]
		pool := config.Pool{MaxIdleTime: 10 * time.Second, MaxLifetime: 2 * time.Minute, MaxConnections: 64}
		if lb == nil || lb.Pool != pool || lb.ConnectTimeout != 500*time.Millisecond {
			t.Errorf("catalog-service upstream %+v", lb)
		}
		if direct == nil || direct.Pool != pool || direct.ConnectTimeout != 750*time.Millisecond {
			t.Errorf("legacy upstream %+v", direct)
		}
		if r := cfg.Routes[0]; r.ResponseTimeout != 1500*time.Millisecond {
			t.Errorf("catalog response timeout %s, want 1.5s (metadata.response-timeout)", r.ResponseTimeout)
		}
		if r := cfg.Routes[1]; r.ResponseTimeout != 4*time.Second || r.Order != 5 {
			t.Errorf("legacy response timeout %s order %d, want 4s (httpclient.response-timeout) and 5", r.ResponseTimeout, r.Order)
		}
	})
	t.Run("management port is the admin port", func(t *testing.T) {
		resp, err := http.Get("http://" + g.AdminAddr() + "/healthz/live")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin /healthz/live: %d", resp.StatusCode)
		}
	})
	t.Run("reload reads the Spring file again", func(t *testing.T) {
		if err := g.Reload(); err != nil {
			t.Fatal(err)
		}
		if resp, _ := gatewaytest.Get(t, g, "/shop/catalog/x"); resp.StatusCode != 200 {
			t.Errorf("after reload: %d", resp.StatusCode)
		}
	})
	if !strings.Contains(logs.String(), `management.endpoints.web.exposure.include: ignored: not gateway configuration`) {
		t.Errorf("the harmless properties left out are not logged:\n%s", logs.String())
	}
}

// TestSpringImportRealistic runs the gateway on the realistic application.yml
// of the golden test, unchanged, once Sluice has every filter and block it
// uses; until then it lists what is missing and skips.
func TestSpringImportRealistic(t *testing.T) {
	users := gatewaytest.NewEcho(t, "users")
	users2 := gatewaytest.NewEcho(t, "users")
	orders := gatewaytest.NewEcho(t, "orders")
	legacy := gatewaytest.NewEcho(t, "legacy")
	t.Setenv("SERVER_PORT", "0")
	t.Setenv("MANAGEMENT_PORT", "0")
	t.Setenv("USERS_A_URI", "http://"+users.Addr())
	t.Setenv("USERS_B_URI", "http://"+users2.Addr())
	t.Setenv("ORDERS_URI", "http://"+orders.Addr())
	t.Setenv("LEGACY_URI", "http://"+legacy.Addr())
	t.Setenv("REDIS_HOST", "127.0.0.1")
	const file = "../config/scg/testdata/application.yml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs, _ := scg.Import(file, data, os.LookupEnv)
	if cfg != nil {
		errs = append(errs, gateway.CheckDefinitions(cfg)...)
	}
	var missing []string
	for _, e := range errs {
		if !pendingOnOtherBranch(e) {
			t.Errorf("%v", e)
			continue
		}
		missing = append(missing, e.Msg)
	}
	if t.Failed() {
		return
	}
	if len(missing) > 0 {
		t.Skipf("Sluice on this branch lacks what the file uses:\n%s", strings.Join(missing, "\n"))
	}
	g, err := gateway.StartConfig(file, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })
	// The legacy route: no Redis needed (the users route's rate limiter would).
	req, _ := http.NewRequest("GET", gatewaytest.URL(g, "/page"), nil)
	req.Host = "legacy.example.com"
	resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "legacy" || resp.Header.Get("X-Gateway") != "sluice" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v: %s", resp.StatusCode, resp.Header, body)
	}
	if seen := gatewaytest.DecodeSeen(t, body); seen.Path != "/v1/page" {
		t.Errorf("backend saw %s", seen.Path)
	}
	// The users route: lb:// to two instances, StripPrefix, AddRequestHeader,
	// and a rate limiter whose Redis (nothing listens there) fails open, as Spring does.
	for i := range 2 {
		resp, body := gatewaytest.Get(t, g, "/api/users/42")
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "users" {
			t.Fatalf("request %d: status %d, headers %v: %s", i, resp.StatusCode, resp.Header, body)
		}
		if seen := gatewaytest.DecodeSeen(t, body); seen.Path != "/users/42" || strings.Join(seen.Header["X-Source"], ",") != "gateway" {
			t.Errorf("backend saw %s %v", seen.Path, seen.Header)
		}
	}
	if users.Hits()+users2.Hits() != 2 || orders.Hits() != 0 {
		t.Errorf("hits: users %d+%d, orders %d", users.Hits(), users2.Hits(), orders.Hits())
	}
}

// pendingOnOtherBranch reports whether e is a filter or predicate not yet in
// the registries, or a native block not yet in config.Config: the parts other
// branches add.
func pendingOnOtherBranch(e *config.Error) bool {
	for _, kind := range []string{"unknown filter ", "unknown predicate "} {
		if name, ok := strings.CutPrefix(e.Msg, kind); ok {
			name, _, _ = strings.Cut(strings.Trim(name, `"`), `"`)
			_, isFilter := builtin.Filters()[name]
			_, isPredicate := route.Predicates()[name]
			return !isFilter && !isPredicate
		}
	}
	return strings.Contains(e.Msg, "not supported by this build of Sluice")
}
