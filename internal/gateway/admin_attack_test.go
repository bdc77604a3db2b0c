package gateway_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// The admin port refuses what a web page can send it: a cross-origin POST
// (a CORS simple request, no preflight) and, after DNS rebinding, requests
// that carry the page's own name in Host. The health checks stay open.
// Every probe is raw bytes on the admin socket.
func TestAdminRefusesWebPages(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "")
	admin := g.AdminAddr()
	tests := []struct {
		desc, raw string
		want      int
	}{
		{desc: "cross-origin POST /drain", raw: "POST /drain HTTP/1.1\nHost: " + admin + "\nOrigin: http://evil.example\nContent-Type: text/plain\nContent-Length: 0\n", want: 403},
		{desc: "cross-site POST /reload", raw: "POST /reload HTTP/1.1\nHost: " + admin + "\nSec-Fetch-Site: cross-site\nContent-Length: 0\n", want: 403},
		{desc: "re-bound GET /config/routes", raw: "GET /config/routes HTTP/1.1\nHost: evil.example:9901\n", want: 403},
		{desc: "re-bound GET /metrics", raw: "GET /metrics HTTP/1.1\nHost: evil.example:9901\n", want: 403},
		{desc: "re-bound GET /debug/pprof/cmdline", raw: "GET /debug/pprof/cmdline HTTP/1.1\nHost: evil.example\n", want: 403},
		{desc: "re-bound POST /reload", raw: "POST /reload HTTP/1.1\nHost: evil.example\nContent-Length: 0\n", want: 403},
		{desc: "re-bound unknown path", raw: "GET /future-dashboard HTTP/1.1\nHost: evil.example\n", want: 403},
		{desc: "health check by any name", raw: "GET /healthz/ready HTTP/1.1\nHost: pod-7.example\n", want: 200},
		{desc: "metrics by address", raw: "GET /metrics HTTP/1.1\nHost: " + admin + "\n", want: 200},
		{desc: "metrics by localhost", raw: "GET /metrics HTTP/1.1\nHost: localhost:9901\n", want: 200},
		{desc: "same-origin POST /reload", raw: "POST /reload HTTP/1.1\nHost: " + admin + "\nOrigin: http://" + admin + "\nContent-Length: 0\n", want: 422},
		{desc: "POST /reload from curl", raw: "POST /reload HTTP/1.1\nHost: " + admin + "\nContent-Length: 0\n", want: 422},
	}
	// (422: the reload ran and failed, as the test's gateway has no file.)
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := gatewaytest.Raw(t, admin, tc.raw)
			if resp.StatusCode != tc.want {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	if resp, _ := gatewaytest.Raw(t, admin, "GET /healthz/ready HTTP/1.1\nHost: "+admin+"\n"); resp.StatusCode != 200 {
		t.Errorf("the gateway is not ready any more: %d", resp.StatusCode)
	}
}

// With a token, every admin endpoint but the health checks requires it;
// then any Host will do, but a cross-origin state change is still refused.
func TestAdminBearerToken(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "", gatewaytest.WithAdmin("token_file: "+file))
	admin := g.AdminAddr()
	tests := []struct {
		desc, raw string
		want      int
	}{
		{desc: "no token", raw: "GET /metrics HTTP/1.1\nHost: " + admin + "\n", want: 401},
		{desc: "wrong token", raw: "GET /metrics HTTP/1.1\nHost: " + admin + "\nAuthorization: Bearer s3cret-tokeN\n", want: 401},
		{desc: "basic auth", raw: "POST /drain HTTP/1.1\nHost: " + admin + "\nAuthorization: Basic czNjcmV0LXRva2Vu\nContent-Length: 0\n", want: 401},
		{desc: "the token", raw: "GET /config/routes HTTP/1.1\nHost: " + admin + "\nAuthorization: Bearer s3cret-token\n", want: 200},
		{desc: "health without token", raw: "GET /healthz/live HTTP/1.1\nHost: " + admin + "\n", want: 200},
		{desc: "re-bound name without the token", raw: "GET /metrics HTTP/1.1\nHost: evil.example\n", want: 401},
		{desc: "any name with the token", raw: "GET /metrics HTTP/1.1\nHost: sluice-admin.monitoring.svc\nAuthorization: Bearer s3cret-token\n", want: 200},
		{desc: "cross-origin POST with the token", raw: "POST /drain HTTP/1.1\nHost: " + admin + "\nOrigin: http://evil.example\nAuthorization: Bearer s3cret-token\nContent-Length: 0\n", want: 403},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := gatewaytest.Raw(t, admin, tc.raw)
			if resp.StatusCode != tc.want {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
}
