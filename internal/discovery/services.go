package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// A ServiceLister follows the names of the services a registry lists, for
// Spring Cloud Gateway's discovery locator (a route per service). Run
// publishes the whole sorted list each time it may have changed and returns
// when ctx ends; while the registry cannot be reached, the last list stays.
type ServiceLister interface {
	Run(ctx context.Context, publish func([]string))
}

// serviceDedup publishes a list only when it differs from the last one.
type serviceDedup struct {
	mu      sync.Mutex
	last    []string
	started bool
	publish func([]string)
}

func (d *serviceDedup) send(names []string) {
	slices.Sort(names)
	names = slices.Compact(names)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started && slices.Equal(d.last, names) {
		return
	}
	d.started, d.last = true, names
	d.publish(slices.Clone(names))
}

// maxServices bounds the list of one registry.
const maxServices = 10_000

// NacosServices lists the services of a Nacos namespace and group
// (GET /nacos/v1/ns/service/list), every Nacos.Interval, as Spring Cloud
// Alibaba's NacosServiceDiscovery.getServices does. Servers, credentials,
// namespace and group are Nacos's; Service is not used.
type NacosServices struct{ Nacos *Nacos }

// Run follows the list until ctx ends.
func (s NacosServices) Run(ctx context.Context, publish func([]string)) {
	n := s.Nacos
	log := n.logger()
	interval := n.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	out := &serviceDedup{publish: publish}
	for {
		names, err := n.services(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.Stats.fail(log, err)
		} else {
			n.Stats.ok(log)
			out.send(names)
		}
		if !sleep(ctx, interval) {
			return
		}
	}
}

// services asks the servers in turn for every page of the service list.
func (n *Nacos) services(ctx context.Context) ([]string, error) {
	var errs []error
	for _, server := range n.Servers {
		names, err := n.servicesFrom(ctx, server)
		if err == nil {
			return names, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("nacos: no server address")
	}
	return nil, errors.Join(errs...)
}

func (n *Nacos) servicesFrom(ctx context.Context, server string) ([]string, error) {
	base, err := serverURL(server, 8848)
	if err != nil {
		return nil, err
	}
	base.User = nil
	if strings.Trim(base.Path, "/") == "" {
		base.Path = "/nacos"
	}
	token, err := n.accessToken(ctx, base)
	if err != nil {
		return nil, err
	}
	const pageSize = 1000
	var names []string
	for page := 1; page <= maxServices/pageSize; page++ {
		q := url.Values{"pageNo": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(pageSize)}, "groupName": {n.group()}}
		if n.Namespace != "" {
			q.Set("namespaceId", n.Namespace)
		}
		if token != "" {
			q.Set("accessToken", token)
		}
		u := base.JoinPath("v1/ns/service/list")
		u.RawQuery = q.Encode()
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", nacosAgent)
		var list struct {
			Count int      `json:"count"`
			Doms  []string `json:"doms"`
		}
		if err := getJSON(ctx, n.Client, req, &list); err != nil {
			return nil, fmt.Errorf("nacos: %w", err)
		}
		names = append(names, list.Doms...)
		if len(list.Doms) < pageSize || len(names) >= list.Count {
			break
		}
	}
	return names, nil
}

// EurekaServices lists the applications of the Eureka registry Client
// holds, lower-cased as Spring Cloud Netflix's EurekaDiscoveryClient
// lists them, after every fetch. Applications without instances are left out.
type EurekaServices struct{ Client *EurekaClient }

// Run follows the list until ctx ends.
func (s EurekaServices) Run(ctx context.Context, publish func([]string)) {
	ch, stop := s.Client.watch()
	defer stop()
	out := &serviceDedup{publish: publish}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		if names, ok := s.Client.appNames(); ok {
			out.send(names)
		}
	}
}

// appNames returns the lower-cased names of the applications with instances;
// ok is false while the last fetch failed.
func (c *EurekaClient) appNames() ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || !c.fetched {
		return nil, false
	}
	var names []string
	for name, insts := range c.apps {
		if len(insts) > 0 {
			names = append(names, strings.ToLower(name))
		}
	}
	return names, true
}

// ConsulServices lists the services of Consul's catalog
// (GET /v1/catalog/services) with blocking queries, as Spring Cloud
// Consul's ConsulDiscoveryClient.getServices does.
type ConsulServices struct {
	Client     *api.Client
	Datacenter string
	Wait       time.Duration // blocking query wait; default 5m
	Log        *slog.Logger
}

// Run follows the list until ctx ends.
func (s ConsulServices) Run(ctx context.Context, publish func([]string)) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	wait := s.Wait
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	out := &serviceDedup{publish: publish}
	var index uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait, Datacenter: s.Datacenter}).WithContext(ctx)
		start := time.Now()
		svcs, meta, err := s.Client.Catalog().Services(q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("consul: cannot list services; the last list stays", "error", err.Error())
			index = 0
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		out.send(slices.Collect(maps.Keys(svcs)))
		if next := meta.LastIndex; next < index || next == 0 {
			index = 0
		} else {
			index = next
		}
		if time.Since(start) < 50*time.Millisecond && !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// KubernetesServices lists the Services of a namespace, as Spring Cloud
// Kubernetes' discovery client does, following them with a watch.
type KubernetesServices struct {
	Kubernetes *Kubernetes // Client, Namespace and Log; Service is not used
}

// Run follows the list until ctx ends.
func (s KubernetesServices) Run(ctx context.Context, publish func([]string)) {
	k := s.Kubernetes
	log := k.Log
	if log == nil {
		log = slog.Default()
	}
	factory := informers.NewSharedInformerFactoryWithOptions(k.Client, 0, informers.WithNamespace(k.Namespace))
	inf := factory.Core().V1().Services()
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
		log.Error("kubernetes discovery: cannot watch services", "namespace", k.Namespace, "error", err.Error())
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return
	}
	out := &serviceDedup{publish: publish}
	lister := inf.Lister().Services(k.Namespace)
	for {
		if list, err := lister.List(labels.Everything()); err == nil {
			out.send(serviceNames(list))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func serviceNames(list []*corev1.Service) []string {
	names := make([]string, 0, len(list))
	for _, s := range list {
		names = append(names, s.Name)
	}
	return names
}
