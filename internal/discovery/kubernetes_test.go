package discovery

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestFromSlicesGolden")

var portRE = regexp.MustCompile(`(?m)^# port: (\S*)$`)

// TestFromSlicesGolden translates the EndpointSlice manifests in
// testdata/kubernetes/*.yaml (a "# port: NAME" line picks the port) and
// compares the endpoint set with the .golden file beside each.
func TestFromSlicesGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			port := ""
			if m := portRE.FindSubmatch(data); m != nil {
				port = string(m[1])
			}
			var list []*discoveryv1.EndpointSlice
			for doc := range strings.SplitSeq(string(data), "\n---\n") {
				if strings.TrimSpace(portRE.ReplaceAllString(doc, "")) == "" {
					continue
				}
				s := &discoveryv1.EndpointSlice{}
				if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if s.Kind != "EndpointSlice" {
					t.Fatalf("%s: kind %q", file, s.Kind)
				}
				list = append(list, s)
			}
			var got bytes.Buffer
			for _, a := range addrs(FromSlices(list, port)) {
				got.WriteString(a + "\n")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Fatalf("endpoints of %s:\n%s\nwant (%s):\n%s", file, got.String(), golden, want)
			}
		})
	}
}

// slice builds an EndpointSlice of service "api" in namespace "shop".
func slice(name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "shop",
			Labels: map[string]string{discoveryv1.LabelServiceName: "api"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
	}
}

func ptr[T any](v T) *T { return &v }

func ready(ip string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}}
}

func terminating(ip string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}}
}

// TestKubernetesInformer drives the source through client-go's fake
// clientset and real shared informers.
func TestKubernetesInformer(t *testing.T) {
	client := fake.NewClientset()
	ctx := context.Background()
	sliceAPI := client.DiscoveryV1().EndpointSlices("shop")
	mustCreate := func(s *discoveryv1.EndpointSlice) {
		t.Helper()
		if _, err := sliceAPI.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate := func(s *discoveryv1.EndpointSlice) {
		t.Helper()
		if _, err := sliceAPI.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A slice of another Service in the same namespace is never used.
	other := slice("web-1", ready("10.9.9.9"))
	other.Labels[discoveryv1.LabelServiceName] = "web"
	mustCreate(other)
	mustCreate(slice("api-1", ready("10.0.0.1"), ready("10.0.0.2")))

	c := run(t, &Kubernetes{Client: client, Namespace: "shop", Service: "api", Port: "http"})
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.2:8080")

	// Add an endpoint.
	mustUpdate(slice("api-1", ready("10.0.0.1"), ready("10.0.0.2"), ready("10.0.0.3")))
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080")

	// One turns serving+terminating: draining.
	mustUpdate(slice("api-1", ready("10.0.0.1"), terminating("10.0.0.2"), ready("10.0.0.3")))
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.2:8080 draining", "10.0.0.3:8080")

	// It goes away.
	mustUpdate(slice("api-1", ready("10.0.0.1"), ready("10.0.0.3")))
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.3:8080")

	// A second slice of the same Service is merged.
	mustCreate(slice("api-2", ready("10.0.1.1")))
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.3:8080", "10.0.1.1:8080")

	// Every endpoint terminating: keep using the serving ones, as kube-proxy does.
	mustUpdate(slice("api-1", terminating("10.0.0.1"), terminating("10.0.0.3")))
	mustUpdate(slice("api-2", terminating("10.0.1.1")))
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.3:8080", "10.0.1.1:8080")

	// A slice deleted: its endpoints are removed.
	if err := sliceAPI.Delete(ctx, "api-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.3:8080")
}

// TestKubernetesAPIErrors: while the API server fails (watch ended, list
// errors), the last known set stays; changes made meanwhile arrive once the
// API server answers again.
func TestKubernetesAPIErrors(t *testing.T) {
	client := fake.NewClientset(slice("api-1", ready("10.0.0.1"), ready("10.0.0.2")))
	var failing atomic.Bool
	var listErrors atomic.Int64
	var mu sync.Mutex
	var watches []watch.Interface
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			listErrors.Add(1)
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	client.PrependWatchReactor("endpointslices", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if failing.Load() {
			return true, nil, errors.New("connection refused")
		}
		w, err := client.Tracker().Watch(a.GetResource(), a.GetNamespace())
		mu.Lock()
		watches = append(watches, w)
		mu.Unlock()
		return true, w, err
	})

	c := run(t, &Kubernetes{Client: client, Namespace: "shop", Service: "api", Port: "http"})
	c.await(t, 5*time.Second, "10.0.0.1:8080", "10.0.0.2:8080")
	published := c.count()

	// The API server goes away: the watch ends and lists fail.
	failing.Store(true)
	mu.Lock()
	for _, w := range watches {
		w.Stop()
	}
	mu.Unlock()
	// Meanwhile the Service loses an endpoint, which Sluice cannot know yet.
	if err := client.Tracker().Update(discoveryv1.SchemeGroupVersion.WithResource("endpointslices"),
		slice("api-1", ready("10.0.0.1")), "shop"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return listErrors.Load() >= 1 }) {
		t.Fatal("the informer never relisted")
	}
	time.Sleep(200 * time.Millisecond)
	if c.count() != published || !slices.Equal(addrs(c.last()), []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Fatalf("while the API server failed: %d publications, last %v; want the last known set", c.count(), addrs(c.last()))
	}

	failing.Store(false)
	c.await(t, 10*time.Second, "10.0.0.1:8080")
}
