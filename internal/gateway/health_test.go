package gateway_test

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// An endpoint failing its active health checks stops getting traffic, and
// gets it again once it passes them.
func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	var sickHits atomic.Int64
	start := func(name string, h http.HandlerFunc) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	good := start("good", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("good")) })
	flaky := start("flaky", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		sickHits.Add(1)
		w.Write([]byte("flaky"))
	})
	g := gatewaytest.Start(t, `
		upstreams:
		  backend:
		    endpoints: ["`+good+`", "`+flaky+`"]
		    health_check: {path: /healthz, interval: 50ms, timeout: 40ms, unhealthy_threshold: 2, healthy_threshold: 1}
		routes:
		  - id: all
		    uri: lb://backend`)
	sick.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for {
		var unhealthy bool
		for _, e := range g.Cluster("backend").Endpoints() {
			if e.Addr == flaky {
				unhealthy = e.Unhealthy()
			}
		}
		if unhealthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flaky endpoint never marked unhealthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := sickHits.Load()
	for i := 0; i < 20; i++ {
		if resp, _ := gatewaytest.Get(t, g, "/x"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := sickHits.Load() - before; n != 0 {
		t.Fatalf("unhealthy endpoint got %d requests", n)
	}
	sick.Store(false)
	deadline = time.Now().Add(3 * time.Second)
	for sickHits.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("recovered endpoint never got traffic again")
		}
		gatewaytest.Get(t, g, "/x")
		time.Sleep(20 * time.Millisecond)
	}
}
