package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestSpringHostPredicatePort runs a Spring file whose routes use Host
// predicates through a real gateway listener: as in Spring Cloud Gateway
// (include-port, its default), the Host header's port is part of the
// match; with include-port: false it is ignored.
func TestSpringHostPredicatePort(t *testing.T) {
	be := newPathBackend(t, "be")
	routes := `
      routes:
        - id: any-port
          uri: http://` + be.addr() + `
          predicates:
            - Host=**.example.org:*
            - Path=/star/**
        - id: no-port
          uri: http://` + be.addr() + `
          predicates:
            - Host=**.example.org
            - Path=/plain/**
        - id: port-8443
          uri: http://` + be.addr() + `
          predicates:
            - Host=api.example.org:8443
            - Path=/tls/**
`
	for _, tc := range []struct {
		name, extra string
		want        map[string]int // "HOST PATH" → status
	}{
		{name: "include-port (Spring's default)", want: map[string]int{
			"www.example.org:8080 /star/x": 200, "www.example.org:8080 /plain/x": 404, "www.example.org /plain/x": 200,
			"api.example.org:8443 /tls/x": 200, "api.example.org:8080 /tls/x": 404, "api.example.org /tls/x": 404}},
		{name: "include-port false", extra: "      predicate.host.include-port: false\n", want: map[string]int{
			"www.example.org:8080 /star/x": 200, "www.example.org:8080 /plain/x": 200, "www.example.org /plain/x": 200,
			"api.example.org:8443 /tls/x": 200, "api.example.org:8080 /tls/x": 200, "api.example.org /tls/x": 200}},
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
			for hp, want := range tc.want {
				host, p, _ := strings.Cut(hp, " ")
				req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr()+p, nil)
				req.Host = host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("Host: %s GET %s: %d, want %d", host, p, resp.StatusCode, want)
				}
			}
		})
	}
}
