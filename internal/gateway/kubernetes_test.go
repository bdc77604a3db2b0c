package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

func ptr[T any](v T) *T { return &v }

// backendSlice is an EndpointSlice of Service shop/api holding one backend
// (each loopback backend has its own port, and a slice has one port set).
func backendSlice(b *countingBackend, ready, serving, terminating bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "api-" + b.name, Namespace: "shop",
			Labels: map[string]string{discoveryv1.LabelServiceName: "api"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(b.port())}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"127.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		}},
	}
}

// TestKubernetesDiscoveryDrain runs a real gateway whose upstream follows
// EndpointSlices served by client-go's fake clientset, with real backends:
// a pod turning serving+terminating gets no new requests, its idle
// connections are closed by Sluice while its in-flight request finishes;
// removed, it is gone; when every pod is terminating, they keep serving.
func TestKubernetesDiscoveryDrain(t *testing.T) {
	t.Parallel()
	a := newCountingBackend(t, "a")
	b := newCountingBackend(t, "b")
	client := fake.NewClientset()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, nil, 0o600)
	gateway.SetKubeClient(kubeconfig, client)
	ctx := context.Background()
	api := client.DiscoveryV1().EndpointSlices("shop")
	for _, be := range []*countingBackend{a, b} {
		if _, err := api.Create(ctx, backendSlice(be, true, true, false), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	g := gatewaytest.Start(t, `
		upstreams:
		  api:
		    discovery: {type: kubernetes, namespace: shop, service: api, port: http, kubeconfig: `+kubeconfig+`}
		    pool: {max_idle_time: 30s}
		routes:
		  - {id: api, uri: "lb://api"}
		`)
	c := gatewaytest.Client(t)
	get := func(path string) (int, string) {
		resp, err := c.Get(gatewaytest.URL(g, path))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		ioCopyDiscardBody(resp)
		return resp.StatusCode, resp.Header.Get("X-Backend")
	}
	if !gatewaytest.Eventually(5*time.Second, func() bool { return len(g.Cluster("api").Endpoints()) == 2 }) {
		t.Fatalf("endpoints %d, want 2", len(g.Cluster("api").Endpoints()))
	}
	// Warm both pools: several connections each, some left idle.
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); get("/warm?sleep=100") }()
	}
	wg.Wait()
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Fatalf("hits a=%d b=%d, want both", a.hits.Load(), b.hits.Load())
	}

	// A slow request in flight on b.
	slow := make(chan string, 1)
	go func() {
		for {
			st, be := get("/slow?sleep=1500")
			if be == "b" || st != 200 {
				slow <- fmt.Sprint(st, " ", be)
				return
			}
		}
	}()
	if !gatewaytest.Eventually(5*time.Second, func() bool { return b.inflight.Load() == 1 }) {
		t.Fatal("no request in flight on b")
	}
	if b.open.Load() < 2 {
		t.Fatalf("b has %d connections open, want an idle one besides the busy one", b.open.Load())
	}

	// b's pod terminates: serving, terminating, not ready.
	if _, err := api.Update(ctx, backendSlice(b, false, true, true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !gatewaytest.Eventually(5*time.Second, func() bool { return b.open.Load() == 1 }) {
		t.Fatalf("b's idle connections not closed by the gateway: %d open", b.open.Load())
	}
	bHits := b.hits.Load()
	for i := range 40 {
		if st, be := get(fmt.Sprintf("/after-%d", i)); st != 200 || be != "a" {
			t.Fatalf("request %d after b terminated: %d from %q, want 200 from a", i, st, be)
		}
	}
	if got := <-slow; got != "200 b" {
		t.Fatalf("in-flight request on the terminating pod: %s, want 200 b", got)
	}
	if b.hits.Load() != bHits+1 {
		t.Fatalf("b answered %d requests after it terminated, want only the one in flight", b.hits.Load()-bHits)
	}

	// b's slice is gone; then a terminates too and is still used (nothing else is left).
	if err := api.Delete(ctx, "api-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !gatewaytest.Eventually(5*time.Second, func() bool { return len(g.Cluster("api").Endpoints()) == 1 }) {
		t.Fatal("b not removed")
	}
	if _, err := api.Update(ctx, backendSlice(a, false, true, true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 20 {
		if st, be := get(fmt.Sprintf("/all-terminating-%d", i)); st != 200 || be != "a" {
			t.Fatalf("all terminating, request %d: %d from %q, want 200 from a", i, st, be)
		}
	}
}

func ioCopyDiscardBody(resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			return
		}
	}
}
