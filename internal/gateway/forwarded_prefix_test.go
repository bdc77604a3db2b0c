package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestSpringForwardedPrefix runs a Spring file through a real gateway
// listener: as Spring Cloud Gateway's XForwardedHeadersFilter does, the
// backend gets X-Forwarded-Prefix, the start of the path a StripPrefix or
// RewritePath removed, and none when the path was not shortened
// (PrefixPath, no filter); with x-forwarded.prefix-enabled: false, none.
func TestSpringForwardedPrefix(t *testing.T) {
	echo := gatewaytest.NewEcho(t, "echo")
	routes := `
      routes:
        - id: strip
          uri: http://` + echo.Addr() + `
          predicates: [Path=/api/**]
          filters: [StripPrefix=1]
        - id: rewrite
          uri: http://` + echo.Addr() + `
          predicates: [Path=/user-service/**]
          filters: ["RewritePath=/user-service/?(?<remaining>.*), /$\\{remaining}"]
        - id: prefix
          uri: http://` + echo.Addr() + `
          predicates: [Path=/p/**]
          filters: [PrefixPath=/v1]
        - id: plain
          uri: http://` + echo.Addr() + `
          predicates: [Path=/plain/**]
`
	for _, tc := range []struct {
		name, extra string
		want        map[string]string // path → X-Forwarded-Prefix
	}{
		{name: "Spring's default", want: map[string]string{"/api/users/1": "/api", "/user-service/a/b": "/user-service",
			"/user-service": "/user-service", "/p/x": "", "/plain/x": ""}},
		{name: "prefix-enabled false", extra: "      x-forwarded.prefix-enabled: false\n", want: map[string]string{"/api/users/1": "", "/user-service/a/b": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := "server.port: 0\nmanagement.server.port: 0\nspring:\n  cloud:\n    gateway:\n" + tc.extra + routes[1:]
			path := filepath.Join(t.TempDir(), "application.yml")
			if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			g, err := gateway.Start(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { gatewaytest.Stop(g) })
			c := gatewaytest.Client(t)
			for p, want := range tc.want {
				req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, p), nil)
				req.Header.Set("X-Forwarded-Prefix", "/forged") // from an untrusted client: removed
				resp, body := gatewaytest.Do(t, c, req)
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
				}
				seen := gatewaytest.DecodeSeen(t, body)
				if got := http.Header(seen.Header).Get("X-Forwarded-Prefix"); got != want {
					t.Errorf("GET %s: the backend (path %s) got X-Forwarded-Prefix %q, want %q", p, seen.Path, got, want)
				}
			}
		})
	}
}
