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

// newSource maps an upstream's discovery config to a discovery.Source.
func newSource(name string, d *config.Discovery) (discovery.Source, error) {
	log := slog.Default().With("upstream", name, "discovery", d.Type)
	switch d.Type {
	case config.DiscoveryDNS:
		port, _ := strconv.Atoi(d.Port)
		return &discovery.DNS{Name: d.Name, Record: d.Record, Port: port, Resolver: d.Resolver,
			MinTTL: d.MinTTL, MaxTTL: d.MaxTTL, Timeout: d.Timeout, Log: log}, nil
	case config.DiscoveryFile:
		return &discovery.File{Path: d.Path, Interval: d.Interval, Log: log}, nil
	case config.DiscoveryKubernetes:
		client, err := kubeClient(d.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return &discovery.Kubernetes{Client: client, Namespace: d.Namespace, Service: d.Service, Port: d.Port, Log: log}, nil
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
