package discovery_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/discovery"
	"github.com/sluice-gw/sluice/internal/discovery/registrytest"
	"github.com/sluice-gw/sluice/internal/endpoint"
)

// The registries (Nacos, Eureka: Java servers; Consul: not free) cannot run
// on the test machines. These tests run each client, unchanged, against
// registrytest's in-process servers, which speak the registry's documented
// HTTP API with bodies recorded from its documentation.

// watcher runs src and keeps what it publishes.
type watcher struct {
	mu   sync.Mutex
	sets [][]endpoint.Spec
}

func watch(t *testing.T, src discovery.Source) *watcher {
	w := &watcher{}
	r := discovery.Start(src, func(s []endpoint.Spec) {
		w.mu.Lock()
		w.sets = append(w.sets, s)
		w.mu.Unlock()
	})
	t.Cleanup(r.Stop)
	return w
}

func (w *watcher) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.sets) == 0 {
		return "(nothing)"
	}
	return fmt.Sprint(w.sets[len(w.sets)-1])
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sets)
}

// await waits for the last set published to print as want.
func (w *watcher) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.last() != want {
		if time.Now().After(deadline) {
			t.Fatalf("published %s, want %s", w.last(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func up(addr string) registrytest.Instance { return registrytest.Instance{Addr: addr, Healthy: true} }

// TestNacosDocumentedAnswer maps the instance list of Nacos's Open API
// documentation: its one instance is unhealthy, so it is draining.
func TestNacosDocumentedAnswer(t *testing.T) {
	b, err := os.ReadFile("registrytest/testdata/nacos-instance-list.json")
	if err != nil {
		t.Fatal(err)
	}
	var list discovery.NacosInstanceList
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(discovery.NacosSpecs(list.Hosts, nil))
	if want := "[{10.10.10.10:8888 100 true}]"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got := discovery.NacosSpecs(list.Hosts, []string{"other"}); len(got) != 0 {
		t.Fatalf("an instance of another cluster was kept: %v", got)
	}
}

// TestNacosWeightsHealthAndPush: weights become endpoint weights, unhealthy
// and disabled instances drain, and a change reaches the gateway by Nacos's
// UDP push although the poll interval is an hour.
func TestNacosWeightsHealthAndPush(t *testing.T) {
	n := registrytest.NewNacos(t)
	n.Username, n.Password = "nacos", "s3cret"
	n.Set("dev", "SHOP", "user-service",
		registrytest.Instance{Addr: "127.0.0.1:9001", Healthy: true, Weight: 2},
		registrytest.Instance{Addr: "127.0.0.1:9002", Healthy: true, Weight: 0.5})
	w := watch(t, &discovery.Nacos{Servers: []string{"127.0.0.1:1", n.Addr()}, Namespace: "dev", Group: "SHOP", Service: "user-service",
		Username: "nacos", Password: "s3cret", Interval: time.Hour, Push: true})
	w.await(t, "[{127.0.0.1:9001 200 false} {127.0.0.1:9002 50 false}]")

	n.Set("dev", "SHOP", "user-service",
		registrytest.Instance{Addr: "127.0.0.1:9001", Healthy: false, Weight: 2},
		registrytest.Instance{Addr: "127.0.0.1:9002", Healthy: true, Disabled: true, Weight: 0.5},
		registrytest.Instance{Addr: "127.0.0.1:9003", Healthy: true})
	w.await(t, "[{127.0.0.1:9001 200 true} {127.0.0.1:9002 50 true} {127.0.0.1:9003 100 false}]")
	if n.Acks.Load() == 0 {
		t.Fatal("the push was not acknowledged")
	}
}

// TestNacosOutageKeepsLastSet: while Nacos is down the last set stays and
// the outage is counted; when it is back, changes flow again.
func TestNacosOutageKeepsLastSet(t *testing.T) {
	n := registrytest.NewNacos(t)
	n.Set("", "", "user-service", up("127.0.0.1:9001"))
	stats := &discovery.Stats{Upstream: "user-service", Registry: "nacos"}
	w := watch(t, &discovery.Nacos{Servers: []string{n.Addr()}, Service: "user-service", Interval: 50 * time.Millisecond, Stats: stats})
	w.await(t, "[{127.0.0.1:9001 100 false}]")
	n.Stop()
	eventually(t, "failures counted", func() bool { return stats.Snapshot().Failures >= 3 })
	if s := stats.Snapshot(); s.Up {
		t.Fatal("registry reported up while down")
	}
	if w.last() != "[{127.0.0.1:9001 100 false}]" {
		t.Fatalf("set changed while Nacos was down: %s", w.last())
	}
	n.Start()
	n.Set("", "", "user-service", up("127.0.0.1:9002"))
	w.await(t, "[{127.0.0.1:9002 100 false}]")
	if !stats.Snapshot().Up {
		t.Fatal("registry not reported up again")
	}
}

// TestEurekaDeltasAndStatuses: after one full fetch the client follows the
// registry with delta fetches; DOWN and OUT_OF_SERVICE drain, STARTING is
// left out; an outage keeps the last set.
func TestEurekaDeltasAndStatuses(t *testing.T) {
	e := registrytest.NewEureka(t)
	e.Set("other-service", up("127.0.0.1:9100"))
	e.Set("USER-SERVICE", up("127.0.0.1:9001"), up("127.0.0.1:9002"))
	client := &discovery.EurekaClient{ServiceURLs: []string{"http://127.0.0.1:1/eureka/", e.ServiceURL()}, Interval: 50 * time.Millisecond}
	stats := &discovery.Stats{}
	w := watch(t, &discovery.Eureka{Client: client, App: "user-service", Stats: stats})
	w.await(t, "[{127.0.0.1:9001 1 false} {127.0.0.1:9002 1 false}]")

	e.Set("USER-SERVICE",
		registrytest.Instance{Addr: "127.0.0.1:9001", Status: "DOWN"},
		registrytest.Instance{Addr: "127.0.0.1:9002", Disabled: true},
		registrytest.Instance{Addr: "127.0.0.1:9003", Status: "STARTING"},
		up("127.0.0.1:9004"))
	w.await(t, "[{127.0.0.1:9001 1 true} {127.0.0.1:9002 1 true} {127.0.0.1:9004 1 false}]")
	if e.DeltaFetches.Load() == 0 || e.FullFetches.Load() != 1 {
		t.Fatalf("full fetches %d, delta fetches %d: want one full fetch, then deltas", e.FullFetches.Load(), e.DeltaFetches.Load())
	}

	e.Stop()
	eventually(t, "failures counted", func() bool { return stats.Snapshot().Failures >= 2 })
	e.Start()
	e.Set("USER-SERVICE", up("127.0.0.1:9004"))
	w.await(t, "[{127.0.0.1:9004 1 false}]")
}

// TestConsulBlockingQueries: only passing instances are published, weights
// kept, changes arrive through blocking queries (no polling: the wait is
// five minutes), and an outage keeps the last set.
func TestConsulBlockingQueries(t *testing.T) {
	c := registrytest.NewConsul(t)
	c.Set("user-service", []string{"v2"}, registrytest.Instance{Addr: "127.0.0.1:9001", Healthy: true, Weight: 3}, registrytest.Instance{Addr: "127.0.0.1:9002"})
	client, err := discovery.NewConsulClient(c.Addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	stats := &discovery.Stats{}
	w := watch(t, &discovery.Consul{Client: client, Service: "user-service", Tag: "v2", Stats: stats})
	w.await(t, "[{127.0.0.1:9001 3 false}]")
	queries := c.Queries.Load()
	c.Set("user-service", []string{"v2"}, up("127.0.0.1:9001"), up("127.0.0.1:9002"))
	w.await(t, "[{127.0.0.1:9001 1 false} {127.0.0.1:9002 1 false}]")
	if q := c.Queries.Load() - queries; q > 3 {
		t.Fatalf("%d queries for one change: polling, not blocking", q)
	}
	c.Stop()
	eventually(t, "failures counted", func() bool { return stats.Snapshot().Failures >= 1 })
	n := w.count()
	c.Start()
	c.Set("user-service", []string{"v2"}, up("127.0.0.1:9002"))
	w.await(t, "[{127.0.0.1:9002 1 false}]")
	if w.count() != n+1 {
		t.Fatalf("%d sets published across the outage, want 1", w.count()-n)
	}
}
