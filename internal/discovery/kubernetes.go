package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Kubernetes follows the EndpointSlices of one Service through a shared
// informer and publishes their merged endpoints (see FromSlices) on every
// change. While the API server cannot be reached the informer keeps its
// cache, so the last known set stays in force; it catches up when the API
// server is back.
type Kubernetes struct {
	Client    kubernetes.Interface
	Namespace string
	Service   string
	// Port is the name of the Service port to use; "" takes the slices'
	// only (or first) port.
	Port string
	// Resync republishes the whole set this often even without events (0: never).
	Resync time.Duration
	Log    *slog.Logger
	Stats  *Stats
}

func (k *Kubernetes) stats() *Stats { return k.Stats }

// Run watches the Service's slices until ctx ends.
func (k *Kubernetes) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	log := k.Log
	if log == nil {
		log = slog.Default()
	}
	selector := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: k.Service})
	factory := informers.NewSharedInformerFactoryWithOptions(k.Client, k.Resync,
		informers.WithNamespace(k.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector.String() }))
	inf := factory.Discovery().V1().EndpointSlices()
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		log.Error("kubernetes discovery: cannot watch", "service", k.Namespace+"/"+k.Service, "error", err.Error())
		return
	}
	_ = inf.Informer().SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		k.Stats.fail(log.With("service", k.Namespace+"/"+k.Service), err)
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return
	}
	out := &dedup{publish: publish, stats: k.Stats}
	lister := inf.Lister().EndpointSlices(k.Namespace)
	for {
		list, err := lister.List(selector)
		if err == nil {
			k.Stats.ok(log)
			out.send(FromSlices(list, k.Port))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// FromSlices merges the EndpointSlices of a Service into one endpoint set,
// taking the port named port ("" takes each slice's only or first port).
// EndpointSlice conditions map as kube-proxy reads them:
//   - ready (nil counts as true): a ready endpoint;
//   - serving && terminating: a draining endpoint, which gets no new
//     requests; but if no ready endpoint is left at all, the serving ones
//     are used as ready, as kube-proxy does;
//   - anything else: left out (removed endpoints are drained by the cluster).
//
// IPv4 and IPv6 slices (dual stack) are merged; FQDN slices are skipped.
// An address listed twice counts as ready if any listing is.
func FromSlices(list []*discoveryv1.EndpointSlice, port string) []endpoint.Spec {
	state := map[string]bool{} // address → ready
	for _, s := range list {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		p, ok := slicePort(s, port)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			ready := c.Ready == nil || *c.Ready
			serving := ready
			if c.Serving != nil {
				serving = *c.Serving
			}
			terminating := c.Terminating != nil && *c.Terminating
			if terminating {
				ready = false
			}
			if !ready && !(serving && terminating) {
				continue
			}
			for _, ip := range e.Addresses {
				if net.ParseIP(ip) == nil {
					continue
				}
				addr := net.JoinHostPort(ip, strconv.Itoa(int(p)))
				state[addr] = state[addr] || ready
			}
		}
	}
	anyReady := false
	for _, r := range state {
		anyReady = anyReady || r
	}
	specs := make([]endpoint.Spec, 0, len(state))
	for addr, r := range state {
		specs = append(specs, endpoint.Spec{Addr: addr, Weight: 1, Draining: anyReady && !r})
	}
	sortSpecs(specs)
	return specs
}

// slicePort returns the port number of the named port in s.
func slicePort(s *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range s.Ports {
		if p.Port == nil {
			continue
		}
		if name == "" || (p.Name != nil && *p.Name == name) {
			return *p.Port, true
		}
	}
	return 0, false
}

// InCluster reports whether Sluice runs in a Kubernetes pod.
func InCluster() bool { return os.Getenv("KUBERNETES_SERVICE_HOST") != "" }

// NewClient connects to the API server: with the kubeconfig file when one
// is given, else in-cluster when in a pod, else with $KUBECONFIG or
// ~/.kube/config.
func NewClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case InCluster():
		cfg, err = rest.InClusterConfig()
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if cfg == nil {
		return nil, errors.New("kubernetes client: no configuration")
	}
	cfg.UserAgent = "sluice"
	return kubernetes.NewForConfig(cfg)
}
