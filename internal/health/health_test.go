package health

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

type target struct {
	eps       []*endpoint.Endpoint
	refreshes atomic.Int32
}

func (t *target) Endpoints() []*endpoint.Endpoint { return t.eps }
func (t *target) Refresh()                        { t.refreshes.Add(1) }

func TestThresholds(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	var hits atomic.Int32
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	e := endpoint.New(endpoint.Spec{Addr: ln.Addr().String()}, nil, time.Now())
	tg := &target{eps: []*endpoint.Endpoint{e}}
	c := Start(tg, Options{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 3, Expected: func(s int) bool { return s >= 200 && s < 300 }})
	defer c.Stop()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("3 checks", func() bool { return hits.Load() >= 3 })
	if e.Unhealthy() {
		t.Fatal("healthy endpoint marked unhealthy")
	}
	status.Store(503)
	h0 := hits.Load()
	waitFor("unhealthy", e.Unhealthy)
	if n := hits.Load() - h0; n < 3 {
		t.Fatalf("unhealthy after %d failed checks, want 3", n)
	}
	status.Store(200)
	h0 = hits.Load()
	waitFor("healthy again", func() bool { return !e.Unhealthy() })
	if n := hits.Load() - h0; n < 2 {
		t.Fatalf("healthy after %d good checks, want 2", n)
	}
	if tg.refreshes.Load() != 2 {
		t.Fatalf("refreshes = %d, want 2 (one per change)", tg.refreshes.Load())
	}
}
