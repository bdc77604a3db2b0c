package gateway_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/redisconn/redistest"
)

// TestRedisReload checks that the shared Redis client survives a reload that
// leaves the redis block alone, is replaced (and the old one closed) when the
// block changes, and that its metrics are on the admin port.
func TestRedisReload(t *testing.T) {
	rs := redistest.Start(t)
	be := gatewaytest.NewEcho(t, "be")
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(redisBlock, limit string) {
		t.Helper()
		data := gatewaytest.Header("", 0) + redisBlock + "\n" + gatewaytest.Dedent(`
			routes:
			  - id: r
			    uri: http://`+be.Addr()+`
			    filters: ["RequestRateLimiter=`+limit+`"]
			`)
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("redis: {address: "+rs.Addr+"}", "100,100,client_ip")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.StartConfig(file, cfg, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })
	if resp, _ := gatewaytest.Get(t, g, "/"); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "99" {
		t.Fatalf("status %d, remaining %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	first := g.Runtime().Redis

	write("redis: {address: "+rs.Addr+"}", "200,200,client_ip")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if g.Runtime().Redis != first {
		t.Error("an unchanged redis block got a new client on reload")
	}

	write("redis: {address: "+rs.Addr+", pool_size: 4}", "200,200,client_ip")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if g.Runtime().Redis == first {
		t.Error("a changed redis block kept the old client")
	}
	if err := first.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("the replaced client still works (%v): it should be closed", err)
	}
	if resp, _ := gatewaytest.Get(t, g, "/"); resp.StatusCode != 200 {
		t.Fatalf("after reload: status %d", resp.StatusCode)
	}

	resp, err := http.Get("http://" + g.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`sluice_redis_command_duration_seconds_bucket{command="evalsha"`, `sluice_redis_pool_connections{state="idle"}`,
		`sluice_redis_pool_acquisitions_total{result="miss"}`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	rs.Kill()
	gatewaytest.Get(t, g, "/") // fails open, counts an error
	resp, err = http.Get("http://" + g.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `sluice_redis_errors_total{kind="connection"}`) {
		t.Errorf("/metrics lacks a connection error count after Redis died:\n%s", grep(string(body), "sluice_redis"))
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
