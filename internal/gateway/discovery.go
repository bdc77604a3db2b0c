package gateway

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/discovery"
	"github.com/sluice-gw/sluice/internal/endpoint"
)

// kubeClients holds one Kubernetes client per kubeconfig ("" = in-cluster
// or the default kubeconfig), shared by every kubernetes discovery source.
var kubeClients = struct {
	sync.Mutex
	m map[string]kubernetes.Interface
}{m: map[string]kubernetes.Interface{}}

// SetKubeClient makes kubernetes discovery with this kubeconfig use client
// (tests use client-go's fake clientset).
func SetKubeClient(kubeconfig string, client kubernetes.Interface) {
	kubeClients.Lock()
	kubeClients.m[kubeconfig] = client
	kubeClients.Unlock()
}

func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	kubeClients.Lock()
	defer kubeClients.Unlock()
	if c := kubeClients.m[kubeconfig]; c != nil {
		return c, nil
	}
	c, err := discovery.NewClient(kubeconfig)
	if err != nil {
		return nil, err
	}
	kubeClients.m[kubeconfig] = c
	return c, nil
}

// eurekaClients holds one Eureka registry client per registry (service
// URLs and fetch settings), shared by the upstreams it serves, as Eureka's
// own client holds one copy of the registry per application.
var eurekaClients = struct {
	sync.Mutex
	m map[string]*discovery.EurekaClient
}{m: map[string]*discovery.EurekaClient{}}

func eurekaClient(d *config.Discovery, log *slog.Logger) *discovery.EurekaClient {
	key := fmt.Sprint(d.Servers, d.Interval, d.Delta)
	eurekaClients.Lock()
	defer eurekaClients.Unlock()
	if c := eurekaClients.m[key]; c != nil {
		return c
	}
	c := &discovery.EurekaClient{ServiceURLs: d.Servers, Interval: d.Interval, FullOnly: !d.Delta, Log: log}
	eurekaClients.m[key] = c
	return c
}

// newSource maps an upstream's discovery config to a discovery.Source.
func newSource(name string, d *config.Discovery) (discovery.Source, error) {
	log := slog.Default().With("upstream", name, "discovery", d.Type)
	stats := &discovery.Stats{Upstream: name, Registry: d.Type}
	switch d.Type {
	case config.DiscoveryNacos:
		return &discovery.Nacos{Servers: d.Servers, Namespace: d.Namespace, Group: d.Group, Service: d.Service,
			Clusters: d.Clusters, Username: d.Username, Password: d.Password, Interval: d.Interval, Push: d.Push,
			Log: log, Stats: stats}, nil
	case config.DiscoveryEureka:
		return &discovery.Eureka{Client: eurekaClient(d, slog.Default().With("discovery", "eureka")), App: d.Service, Log: log, Stats: stats}, nil
	case config.DiscoveryConsul:
		client, err := discovery.NewConsulClient(d.Servers[0], d.Token)
		if err != nil {
			return nil, err
		}
		return &discovery.Consul{Client: client, Service: d.Service, Tag: d.Tag, Datacenter: d.Datacenter, Log: log, Stats: stats}, nil
	case config.DiscoveryDNS:
		port, _ := strconv.Atoi(d.Port)
		return &discovery.DNS{Name: d.Name, Record: d.Record, Port: port, Resolver: d.Resolver,
			MinTTL: d.MinTTL, MaxTTL: d.MaxTTL, Timeout: d.Timeout, Log: log, Stats: stats}, nil
	case config.DiscoveryFile:
		return &discovery.File{Path: d.Path, Interval: d.Interval, Log: log, Stats: stats}, nil
	case config.DiscoveryKubernetes:
		client, err := kubeClient(d.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return &discovery.Kubernetes{Client: client, Namespace: d.Namespace, Service: d.Service, Port: d.Port, Log: log, Stats: stats}, nil
	}
	return nil, fmt.Errorf("discovery type %q is not supported", d.Type)
}

// publisher feeds a source's endpoint sets to c and logs each one.
func publisher(name string, c *cluster.Cluster) func([]endpoint.Spec) {
	log := slog.Default().With("upstream", name)
	return func(specs []endpoint.Spec) {
		c.SetEndpoints(specs)
		draining := 0
		for _, s := range specs {
			if s.Draining {
				draining++
			}
		}
		log.Info("discovered endpoints", "ready", len(specs)-draining, "draining", draining)
	}
}

// DiscoveryStats returns the counters of the running discovery sources,
// for the sluice_discovery_* metrics.
func (rt *Runtime) DiscoveryStats() []*discovery.Stats {
	var out []*discovery.Stats
	for _, r := range rt.sources {
		if s := r.Stats(); s != nil {
			out = append(out, s)
		}
	}
	return out
}
