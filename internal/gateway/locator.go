package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/discovery"
)

// The discovery locator of a Spring file (a route per registered service)
// is followed here: a serviceLister watches the registry's service list,
// and each new list is applied as a reload is, by importing the file in
// force again with those services (apply). Build keeps every upstream
// whose definition did not change, so the other routes' pools, health and
// counters are untouched; a service that leaves takes its route and
// upstream with it, drained by Retire.

// serviceLister is a running discovery.ServiceLister and the registry it lists.
type serviceLister struct {
	spec   *config.Discovery
	cancel context.CancelFunc
	done   chan struct{}
}

// followServices starts, replaces or stops the lister so that it follows
// spec (nil: no locator).
func (g *Gateway) followServices(spec *config.Discovery) {
	g.listerMu.Lock()
	defer g.listerMu.Unlock()
	if g.listerStop {
		return
	}
	if g.lister != nil && reflect.DeepEqual(g.lister.spec, spec) {
		return
	}
	g.stopListerLocked()
	if spec == nil {
		return
	}
	src, err := newServiceLister(spec)
	if err != nil {
		g.log.Error("discovery locator: cannot list the registry's services", "registry", spec.Type, "error", err.Error())
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &serviceLister{spec: spec, cancel: cancel, done: make(chan struct{})}
	g.lister = l
	go func() {
		defer close(l.done)
		src.Run(ctx, func(services []string) {
			if ctx.Err() == nil {
				g.servicesChanged(ctx, services)
			}
		})
	}()
}

// stopServices stops the lister for good (the gateway is stopping).
func (g *Gateway) stopServices() {
	g.listerMu.Lock()
	defer g.listerMu.Unlock()
	g.listerStop = true
	g.stopListerLocked()
}

func (g *Gateway) stopListerLocked() {
	if g.lister == nil {
		return
	}
	g.lister.cancel()
	<-g.lister.done
	g.lister = nil
}

// servicesChanged applies the routes of a new service list to the file in
// force. A list the file's config refuses is logged; the routes in force stay.
func (g *Gateway) servicesChanged(ctx context.Context, services []string) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if ctx.Err() != nil || slices.Equal(g.services, services) {
		return // replaced meanwhile, or nothing new
	}
	data := g.data
	if data == nil {
		var err error
		if data, err = config.ReadFile(g.path); err != nil {
			g.log.Error("discovery locator: cannot read the config", "file", g.path, "error", err.Error())
			return
		}
		g.data = data
	}
	if _, err := g.apply(data, services); err != nil {
		g.log.Error("discovery locator: routes for the registry's services rejected; the previous routes keep serving",
			"services", services, "error", err.Error())
		return
	}
	g.services = services
	g.log.Info("discovery locator: routes follow the registry's services", "services", services)
}

// newServiceLister maps the locator's registry to a discovery.ServiceLister.
func newServiceLister(d *config.Discovery) (discovery.ServiceLister, error) {
	log := slog.Default().With("discovery", d.Type, "locator", true)
	switch d.Type {
	case config.DiscoveryNacos:
		return discovery.NacosServices{Nacos: &discovery.Nacos{Servers: d.Servers, Namespace: d.Namespace, Group: d.Group,
			Username: d.Username, Password: d.Password, Interval: d.Interval, Log: log}}, nil
	case config.DiscoveryEureka:
		return discovery.EurekaServices{Client: eurekaClient(d, slog.Default().With("discovery", "eureka"))}, nil
	case config.DiscoveryConsul:
		client, err := discovery.NewConsulClient(d.Servers[0], d.Token)
		if err != nil {
			return nil, err
		}
		return discovery.ConsulServices{Client: client, Datacenter: d.Datacenter, Log: log}, nil
	case config.DiscoveryKubernetes:
		client, err := kubeClient(d.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return discovery.KubernetesServices{Kubernetes: &discovery.Kubernetes{Client: client, Namespace: d.Namespace, Log: log}}, nil
	}
	return nil, fmt.Errorf("discovery type %q cannot list services", d.Type)
}
