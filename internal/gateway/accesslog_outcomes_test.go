package gateway_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestAccessLogFieldsForEveryOutcome checks that the access-log line of a
// proxied request, of one that matches no route, and of one whose upstream
// is down carries every field, and that its client is the real client
// (the peer, or the X-Forwarded-For client of a trusted proxy), never
// "invalid IP".
func TestAccessLogFieldsForEveryOutcome(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	var logBuf gatewaytest.SafeBuffer
	g := gatewaytest.Start(t, `
		upstreams:
		  up: {endpoints: [`+be.Addr()+`]}
		  down: {endpoints: [`+gatewaytest.ClosedAddr(t)+`]}
		routes:
		  - {id: api, uri: lb://up, predicates: [Path=/api/**]}
		  - {id: gone, uri: lb://down, predicates: [Path=/gone/**]}
		`, gatewaytest.WithLog(&logBuf), gatewaytest.WithServer(`trusted_proxies: ["127.0.0.2"]`))
	c := gatewaytest.Client(t)
	tests := []struct {
		name, path, xff, client string
		status                  int
		from                    string // the client's source address; "" = 127.0.0.1
	}{
		{name: "proxied", path: "/api/x", client: "127.0.0.1", status: 200},
		{name: "no route", path: "/missing", client: "127.0.0.1", status: 404},
		{name: "no route, an untrusted X-Forwarded-For", path: "/missing2", xff: "203.0.113.7", client: "127.0.0.1", status: 404},
		{name: "no route, from a trusted proxy", path: "/missing3", xff: "203.0.113.7", client: "203.0.113.7", status: 404, from: "127.0.0.2"},
		{name: "upstream down", path: "/gone/x", client: "127.0.0.1", status: 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, tc.path), nil)
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			client := c
			if tc.from != "" {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}}
				client = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
			}
			resp, body := gatewaytest.Do(t, client, req)
			if resp.StatusCode != tc.status && !(tc.status == 502 && resp.StatusCode == 503) {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			line := accessLine(t, &logBuf, tc.path)
			for _, f := range config.AccessFieldNames {
				if _, ok := line[f]; !ok {
					t.Errorf("no %s field in %v", f, line)
				}
			}
			for _, f := range []string{"method", "path", "client", "protocol", "request_id", "trace_id", "span_id", "host"} {
				if s, _ := line[f].(string); s == "" {
					t.Errorf("%s empty in %v", f, line)
				}
			}
			if line["client"] != tc.client {
				t.Errorf("client %q, want %q", line["client"], tc.client)
			}
		})
	}
}

// accessLine waits for the access-log line of path.
func accessLine(t *testing.T, logBuf *gatewaytest.SafeBuffer, path string) map[string]any {
	t.Helper()
	var line map[string]any
	if !gatewaytest.Eventually(5*time.Second, func() bool {
		for _, l := range logBuf.JSONLines() {
			if l["msg"] == "access" && l["path"] == path {
				line = l
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no access line for %s in:\n%s", path, logBuf.String())
	}
	return line
}
