package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-gw/sluice/internal/discovery/registrytest"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// pathBackend is a real HTTP backend on loopback that answers its name and
// the path it was asked for.
type pathBackend struct {
	name string
	ln   net.Listener
}

func newPathBackend(t *testing.T, name string) *pathBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pathBackend{name: name, ln: ln}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *pathBackend) addr() string { return b.ln.Addr().String() }

// A locatorRegistry plays the registry of a discovery locator test: the
// application.yml's registry properties, and services coming and going.
type locatorRegistry struct {
	name   string
	spring func(t *testing.T) string // after a NUL: top-level properties
	// set registers service with the backend, or removes it (nil).
	set func(t *testing.T, service string, b *pathBackend)
}

func locatorRegistries() []locatorRegistry {
	var nacos *registrytest.Nacos
	var eureka *registrytest.Eureka
	var consul *registrytest.Consul
	kube := fake.NewClientset()
	inst := func(b *pathBackend) []registrytest.Instance {
		if b == nil {
			return nil
		}
		return []registrytest.Instance{{Addr: b.addr(), Healthy: true}}
	}
	return []locatorRegistry{
		{name: "nacos",
			spring: func(t *testing.T) string {
				nacos = registrytest.NewNacos(t)
				return `
    nacos:
      discovery:
        server-addr: ` + nacos.Addr() + `
        namespace: shop-dev
        watch-delay: 200`
			},
			set: func(t *testing.T, svc string, b *pathBackend) { nacos.Set("shop-dev", "", svc, inst(b)...) }},
		{name: "eureka",
			spring: func(t *testing.T) string {
				eureka = registrytest.NewEureka(t)
				return "\x00" + `eureka:
  client:
    registry-fetch-interval-seconds: 1
    service-url:
      defaultZone: ` + eureka.ServiceURL() + "\n"
			},
			// Eureka's application names are upper case.
			set: func(t *testing.T, svc string, b *pathBackend) { eureka.Set(strings.ToUpper(svc), inst(b)...) }},
		{name: "consul",
			spring: func(t *testing.T) string {
				consul = registrytest.NewConsul(t)
				host, port, _ := strings.Cut(consul.Addr(), ":")
				return `
    consul:
      host: ` + host + `
      port: ` + port
			},
			set: func(t *testing.T, svc string, b *pathBackend) { consul.Set(svc, nil, inst(b)...) }},
		{name: "kubernetes",
			spring: func(t *testing.T) string {
				gateway.SetKubeClient("", kube)
				return `
    kubernetes:
      discovery:
        namespaces: [shop]`
			},
			set: func(t *testing.T, svc string, b *pathBackend) {
				ctx := context.Background()
				if b == nil {
					kube.CoreV1().Services("shop").Delete(ctx, svc, metav1.DeleteOptions{})
					kube.DiscoveryV1().EndpointSlices("shop").Delete(ctx, svc, metav1.DeleteOptions{})
					return
				}
				ready := true
				_, port, _ := net.SplitHostPort(b.addr())
				var p int32
				for _, c := range port {
					p = p*10 + c - '0'
				}
				if _, err := kube.CoreV1().Services("shop").Create(ctx, &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: "shop"}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := kube.DiscoveryV1().EndpointSlices("shop").Create(ctx, &discoveryv1.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: "shop",
						Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports:       []discoveryv1.EndpointPort{{Port: &p}},
					Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}},
	}
}

// TestSpringDiscoveryLocator runs the gateway on an application.yml whose
// discovery locator is on (spring.cloud.gateway.discovery.locator.enabled),
// for each registry: Nacos, Eureka and Consul are registrytest's
// in-process servers speaking their documented HTTP APIs (the real ones
// cannot run here), Kubernetes is client-go's fake clientset. Backends and
// the gateway are real servers on loopback sockets. Each registered
// service gets Spring's route, /SERVICE/** with the prefix rewritten away;
// a file route for the same path keeps precedence; a service that
// registers later gets its route, and one that leaves loses it, without a
// restart and without new connections for the other routes' pools.
func TestSpringDiscoveryLocator(t *testing.T) {
	for _, reg := range locatorRegistries() {
		t.Run(reg.name, func(t *testing.T) {
			users, orders, pay, explicit := newPathBackend(t, "users"), newPathBackend(t, "orders"),
				newPathBackend(t, "pay"), newPathBackend(t, "explicit")
			cloud, top, _ := strings.Cut(reg.spring(t), "\x00")
			yml := top + `server:
  port: 0
management:
  server:
    port: 0
spring:
  application:
    name: api-gateway
  cloud:` + strings.TrimRight(cloud, "\n") + `
    gateway:
      discovery:
        locator:
          enabled: true
          lower-case-service-id: true
      routes:
        - id: orders-v2
          uri: http://` + explicit.addr() + `
          predicates:
            - Path=/orders/**
        - id: user-admin
          uri: http://` + explicit.addr() + `
          order: -1
          predicates:
            - Path=/user-service/admin/**
`
			path := filepath.Join(t.TempDir(), "application.yml")
			if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			reg.set(t, "user-service", users)
			reg.set(t, "orders", orders)
			g, err := gateway.Start(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { gatewaytest.Stop(g) })
			client := &http.Client{Timeout: 5 * time.Second}
			get := func(p string) string {
				resp, err := client.Get("http://" + g.Addr() + p)
				if err != nil {
					return err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					return resp.Status
				}
				return string(b)
			}
			await := func(p, want string) {
				t.Helper()
				got := ""
				if !gatewaytest.Eventually(15*time.Second, func() bool { got = get(p); return got == want }) {
					t.Fatalf("GET %s: %q, want %q", p, got, want)
				}
			}
			await("/user-service/api/me", "users /api/me")
			await("/user-service", "users /")
			await("/orders/1", "orders /1")                                  // at equal order the locator's route first, as in Spring
			await("/user-service/admin/x", "explicit /user-service/admin/x") // a file route with a lower order first
			fileRoute := func() string {
				for _, r := range g.Runtime().Config.Routes {
					if r.ID == "orders-v2" {
						return r.Upstream
					}
				}
				return ""
			}
			before, beforeFile := g.Cluster("user-service"), g.Cluster(fileRoute())

			reg.set(t, "pay", pay)
			await("/pay/charge", "pay /charge")
			reg.set(t, "pay", nil)
			await("/pay/charge", "404 Not Found")

			await("/user-service/api/me", "users /api/me")
			await("/user-service/admin/x", "explicit /user-service/admin/x")
			if g.Cluster("user-service") != before {
				t.Error("the user-service upstream was rebuilt when another service came and went")
			}
			if g.Cluster(fileRoute()) != beforeFile || beforeFile == nil {
				t.Error("the file route's upstream was rebuilt when services came and went")
			}
		})
	}
}
