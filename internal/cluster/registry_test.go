package cluster

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

func endpointOf(c *Cluster, addr string) *endpoint.Endpoint {
	for _, e := range c.Endpoints() {
		if e.Addr == addr {
			return e
		}
	}
	return nil
}

// A reload that changes an upstream makes a new cluster for it; the
// endpoints that stay keep their pool (no new connection to the backend)
// and their ejection, and the old cluster's Close does not drain them.
func TestEndpointStateSurvivesANewClusterForTheUpstream(t *testing.T) {
	a, b := serve(t, nil), serve(t, nil)
	reg := NewRegistry()
	old := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-1", ConsecutiveFailures: 100})
	old.SetEndpoints(specs(a.addr))
	p := DefaultPolicy
	for range 3 {
		if _, err := forward(t, old, http.MethodGet, &p); err != nil {
			t.Fatal(err)
		}
	}
	endpointOf(old, a.addr).Eject(time.Now(), time.Hour)

	next := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-1"})
	defer next.Close()
	next.SetEndpoints(specs(a.addr, b.addr))
	old.Close()
	if !endpointOf(next, a.addr).Ejected(time.Now().UnixNano()) {
		t.Fatal("the endpoint that stayed lost its ejection")
	}
	endpointOf(next, a.addr).Eject(time.Now(), 0) // back in rotation
	next.Refresh()
	for range 6 {
		if _, err := forward(t, next, http.MethodGet, &p); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Fatalf("the endpoint that stayed opened %d connections in all, want 1 (its pool kept)", n)
	}
	if a.hits.Load() < 4 || b.hits.Load() < 2 {
		t.Fatalf("hits a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
}

// When the pool options changed, the endpoint that stays gets a new pool
// (the options take effect) and keeps the rest of its state; the old pool
// is drained once the old cluster lets it go.
func TestChangedPoolOptionsRecreateOnlyThatPool(t *testing.T) {
	a := serve(t, nil)
	reg := NewRegistry()
	old := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-1"})
	old.SetEndpoints(specs(a.addr))
	p := DefaultPolicy
	forward(t, old, http.MethodGet, &p)
	was := endpointOf(old, a.addr)
	was.Failed()

	next := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-2"})
	defer next.Close()
	next.SetEndpoints(specs(a.addr))
	now := endpointOf(next, a.addr)
	recreated := reg.TakeRecreated()
	if now == was || now.Pool == was.Pool {
		t.Fatal("changed pool options kept the old pool")
	}
	if now.Failures.Load() != 1 || len(recreated) != 1 || recreated[0] != a.addr {
		t.Fatalf("failures %d, recreated %v; want the state kept and the recreation told", now.Failures.Load(), recreated)
	}
	old.Close()
	for end := time.Now().Add(5 * time.Second); a.closed.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the old pool's connection was not closed when the old cluster let it go")
		}
	}
	if _, err := forward(t, next, http.MethodGet, &p); err != nil {
		t.Fatal(err)
	}
}

// A cluster made with other pool options and let go at once (a reload that
// failed to build) leaves the live endpoint current: the next cluster with
// the live options shares it again.
func TestAFailedBuildLeavesTheLiveEndpointCurrent(t *testing.T) {
	a := serve(t, nil)
	reg := NewRegistry()
	live := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-1"})
	defer live.Close()
	live.SetEndpoints(specs(a.addr))
	failed := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-2"})
	failed.SetEndpoints(specs(a.addr))
	failed.Close()
	next := newCluster(Options{Name: "u", Registry: reg, PoolKey: "opts-1"})
	defer next.Close()
	next.SetEndpoints(specs(a.addr))
	if endpointOf(next, a.addr) != endpointOf(live, a.addr) {
		t.Fatal("after a failed build with other pool options, the live endpoint is no longer shared")
	}
}
