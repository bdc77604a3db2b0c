package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-gw/sluice/internal/discovery/registrytest"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// A registryUnderTest plays the service registry of a Spring Cloud Gateway
// application.yml: it writes the registry's part of the file, and
// registers backends as up, down or gone.
type registryUnderTest struct {
	name string
	// spring is the application.yml's registry properties, as a Spring
	// user writes them, for a registry at addr.
	spring func(t *testing.T) string
	// set registers the backends in up as ready and those in down as
	// marked down by the registry; the others are gone.
	set func(t *testing.T, up, down []*countingBackend)
	// outage stops the registry and returns what starts it again (nil:
	// not played for this registry).
	outage func() (restart func())
	// downDropped: the registry leaves instances marked down out of its
	// answer (Consul's passing filter) instead of listing them as down.
	downDropped bool
}

func registries() []registryUnderTest {
	var nacos *registrytest.Nacos
	var eureka *registrytest.Eureka
	var consul *registrytest.Consul
	inst := func(up, down []*countingBackend, disabled bool) []registrytest.Instance {
		var out []registrytest.Instance
		for _, b := range up {
			out = append(out, registrytest.Instance{Addr: b.addr(), Healthy: true})
		}
		for _, b := range down {
			out = append(out, registrytest.Instance{Addr: b.addr(), Healthy: false, Disabled: disabled})
		}
		return out
	}
	kube := fake.NewClientset()
	return []registryUnderTest{
		{name: "nacos",
			spring: func(t *testing.T) string {
				nacos = registrytest.NewNacos(t)
				nacos.Username, nacos.Password = "nacos", "nacos-pw"
				return `
  cloud:
    nacos:
      discovery:
        server-addr: ` + nacos.Addr() + `
        namespace: shop-dev
        group: SHOP_GROUP
        username: nacos
        password: nacos-pw
        cluster-name: DEFAULT
        watch-delay: 500
      config:
        enabled: false`
			},
			set: func(t *testing.T, up, down []*countingBackend) {
				nacos.Set("shop-dev", "SHOP_GROUP", "user-service", inst(up, down, false)...)
			},
			outage: func() func() { nacos.Stop(); return nacos.Start }},
		{name: "eureka",
			spring: func(t *testing.T) string {
				eureka = registrytest.NewEureka(t)
				return `
  cloud:
    loadbalancer:
      cache:
        enabled: false
` + "\x00" + `eureka:
  client:
    registry-fetch-interval-seconds: 1
    service-url:
      defaultZone: ` + eureka.ServiceURL() + `
  instance:
    prefer-ip-address: true
`
			},
			set: func(t *testing.T, up, down []*countingBackend) {
				eureka.Set("USER-SERVICE", inst(up, down, true)...)
			},
			outage: func() func() { eureka.Stop(); return eureka.Start }},
		{name: "consul",
			spring: func(t *testing.T) string {
				consul = registrytest.NewConsul(t)
				host, port, _ := strings.Cut(consul.Addr(), ":")
				return `
  cloud:
    consul:
      host: ` + host + `
      port: ` + port + `
      discovery:
        register: false
        query-passing: true`
			},
			set: func(t *testing.T, up, down []*countingBackend) {
				consul.Set("user-service", nil, inst(up, down, false)...)
			},
			outage:      func() func() { consul.Stop(); return consul.Start },
			downDropped: true},
		{name: "kubernetes",
			spring: func(t *testing.T) string {
				gateway.SetKubeClient("", kube)
				return `
  cloud:
    kubernetes:
      discovery:
        namespaces: [shop]
        primary-port-name: http`
			},
			set: func(t *testing.T, up, down []*countingBackend) {
				api := kube.DiscoveryV1().EndpointSlices("shop")
				want := map[string]*discoveryv1.EndpointSlice{}
				for _, b := range up {
					want["user-service-"+b.name] = userSlice(b, true)
				}
				for _, b := range down {
					want["user-service-"+b.name] = userSlice(b, false)
				}
				ctx := context.Background()
				list, _ := api.List(ctx, metav1.ListOptions{})
				for _, s := range list.Items {
					if want[s.Name] == nil {
						api.Delete(ctx, s.Name, metav1.DeleteOptions{})
					}
				}
				for name, s := range want {
					if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
						if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil {
							t.Fatal(name, err)
						}
					}
				}
			}},
	}
}

// userSlice is an EndpointSlice of Service shop/user-service holding one
// backend: ready, or terminating (still serving).
func userSlice(b *countingBackend, ready bool) *discoveryv1.EndpointSlice {
	serving, terminating := true, !ready
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "user-service-" + b.name, Namespace: "shop",
			Labels: map[string]string{discoveryv1.LabelServiceName: "user-service"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(b.port())}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}},
	}
}

// TestSpringRegistryDiscoveryUnderLoad runs the gateway, as `sluice run
// --config application.yml` does, on a Spring Cloud Gateway application.yml
// whose route is lb://user-service and whose registry is Nacos, Eureka,
// Consul or Kubernetes, configured as a Spring user does. Nacos, Eureka and
// Consul are registrytest's in-process servers speaking their documented
// HTTP APIs (the real ones cannot run here); Kubernetes is client-go's fake
// clientset. Backends and the gateway are real servers on loopback sockets.
// Under steady load, an instance is added, the registry goes down for two
// seconds (the last instances keep serving; sluice_discovery_registry_up
// shows it) and comes back, one instance is deregistered and then shut
// down, and one is marked down by the registry and then shut down:
// not one request may fail, a new instance must get requests, and an
// instance marked down must get no new ones and have its idle connections
// closed by the gateway.
func TestSpringRegistryDiscoveryUnderLoad(t *testing.T) {
	for _, reg := range registries() {
		t.Run(reg.name, func(t *testing.T) {
			a, b, c := newCountingBackend(t, "a"), newCountingBackend(t, "b"), newCountingBackend(t, "c")
			path := filepath.Join(t.TempDir(), "application.yml")
			// The registry's top-level block (after a NUL) goes first.
			cloud, top, _ := strings.Cut(reg.spring(t), "\x00")
			yml := top + `server:
  port: 0
management:
  server:
    port: 0
spring:
  application:
    name: api-gateway` + strings.TrimRight(cloud, "\n") + `
    gateway:
      routes:
        - id: users
          uri: lb://user-service
          predicates:
            - Path=/users/**
`
			if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			reg.set(t, []*countingBackend{a, b}, nil)
			g, err := gateway.Start(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { gatewaytest.Stop(g) })
			cl := func() []string {
				var out []string
				for _, e := range g.Cluster("user-service").Endpoints() {
					out = append(out, fmt.Sprintf("%s %v", e.Addr, e.Draining()))
				}
				slices.Sort(out)
				return out
			}
			awaitSet := func(want ...string) {
				t.Helper()
				slices.Sort(want)
				if !gatewaytest.Eventually(15*time.Second, func() bool { return slices.Equal(cl(), want) }) {
					t.Fatalf("endpoints %v, want %v", cl(), want)
				}
			}
			awaitSet(a.addr()+" false", b.addr()+" false")

			load := startLoad(t, g, 4)
			awaitHits := func(be *countingBackend) {
				t.Helper()
				n := be.hits.Load()
				if !gatewaytest.Eventually(15*time.Second, func() bool { return be.hits.Load() > n+10 }) {
					t.Fatalf("backend %s gets no requests", be.name)
				}
			}
			awaitHits(a)
			awaitHits(b)

			// c comes up.
			reg.set(t, []*countingBackend{a, b, c}, nil)
			awaitSet(a.addr()+" false", b.addr()+" false", c.addr()+" false")
			awaitHits(c)

			// The registry goes down: the last instances keep serving, the
			// outage is counted; it comes back by itself.
			if reg.outage != nil {
				restart := reg.outage()
				time.Sleep(2 * time.Second) // several failed fetches
				awaitHits(a)
				awaitHits(c)
				if m := adminBody(t, g); !strings.Contains(m, `sluice_discovery_registry_up{registry="`+reg.name+`",upstream="user-service"} 0`) {
					t.Errorf("registry outage not in the metrics:\n%s", grepLines(m, "sluice_discovery_"))
				}
				restart()
				if !gatewaytest.Eventually(15*time.Second, func() bool {
					return strings.Contains(adminBody(t, g), `sluice_discovery_registry_up{registry="`+reg.name+`",upstream="user-service"} 1`)
				}) {
					t.Fatal("registry not seen up again")
				}
			}

			// a deregisters, then shuts down as an instance does.
			reg.set(t, []*countingBackend{b, c}, nil)
			awaitSet(b.addr()+" false", c.addr()+" false")
			shutdown(t, a)

			// The registry marks b down: no new requests, idle connections closed.
			reg.set(t, []*countingBackend{c}, []*countingBackend{b})
			if reg.downDropped {
				awaitSet(c.addr() + " false")
			} else {
				awaitSet(b.addr()+" true", c.addr()+" false")
			}
			if !gatewaytest.Eventually(10*time.Second, func() bool { return b.open.Load() == 0 }) {
				t.Fatalf("b marked down keeps %d connections open", b.open.Load())
			}
			hits := b.hits.Load()
			awaitHits(c)
			if b.hits.Load() != hits {
				t.Fatalf("b got %d requests after it was marked down", b.hits.Load()-hits)
			}
			shutdown(t, b)
			awaitHits(c)

			total, failed := load.stop()
			t.Logf("%s: %d requests, %d failed", reg.name, total, len(failed))
			if len(failed) > 0 {
				t.Fatalf("%d of %d requests failed, first: %s", len(failed), total, failed[0])
			}
		})
	}
}

func shutdown(t *testing.T, b *countingBackend) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatalf("backend %s shutdown: %v", b.name, err)
	}
}

// load sends requests from several clients until stopped, keeping failures.
type load struct {
	done   chan struct{}
	wg     sync.WaitGroup
	total  atomic.Int64
	mu     sync.Mutex
	failed []string
}

func startLoad(t *testing.T, g *gateway.Gateway, clients int) *load {
	l := &load{done: make(chan struct{})}
	for i := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := gatewaytest.Client(t)
			for n := 0; ; n++ {
				select {
				case <-l.done:
					return
				default:
				}
				resp, err := c.Get(gatewaytest.URL(g, fmt.Sprintf("/users/%d-%d", i, n)))
				l.total.Add(1)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Sluice-Reason")))
				}
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *load) fail(s string) {
	l.mu.Lock()
	l.failed = append(l.failed, s)
	l.mu.Unlock()
}

func (l *load) stop() (int64, []string) {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total.Load(), slices.Clone(l.failed)
}
