package scg

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/config"
)

// A registry is where Spring's discovery client finds the instances of an
// lb:// service, read from the same properties Spring reads: Nacos (Spring
// Cloud Alibaba), Eureka (Spring Cloud Netflix), Consul (Spring Cloud
// Consul) or Kubernetes (Spring Cloud Kubernetes). discovery returns the
// native discovery block of one service.
type registry struct {
	name      string
	at        *prop // the property that chose the registry, for positions
	discovery func(service string, at *yaml.Node) *yaml.Node
}

// registry returns the registry the file configures, or nil (computed once).
// Several registries are one error: Spring would ask each in turn, and the
// first to know the service wins; Sluice follows one registry.
func (c *converter) registry() *registry {
	if c.reg != nil || c.regDone {
		return c.reg
	}
	c.regDone = true
	if p := c.setting("spring.cloud.discovery.enabled"); p != nil {
		if on, ok := c.boolean(p); ok && !on {
			return nil
		}
	}
	var found []*registry
	for _, f := range []func() *registry{c.nacos, c.eureka, c.consul, c.kubernetes} {
		if r := f(); r != nil {
			found = append(found, r)
		}
	}
	if len(found) > 1 {
		names := []string{}
		for _, r := range found {
			names = append(names, r.name+" ("+r.at.path+")")
		}
		c.errorf(found[1].at.key, found[1].at.path, "not supported: several service registries (%s); Sluice follows one: disable the others (…enabled: false)", strings.Join(names, ", "))
	}
	if len(found) > 0 {
		c.reg = found[0]
	} else if config.InCluster() {
		// In a pod without other registries, Spring Cloud Kubernetes finds lb://NAME as the Service NAME.
		c.reg = &registry{name: "kubernetes", at: c.root, discovery: func(svc string, at *yaml.Node) *yaml.Node {
			return kubeNode(svc, "", "", at)
		}}
	}
	return c.reg
}

// enabled reports whether none of the boolean properties at paths is false.
func (c *converter) enabled(paths ...string) bool {
	for _, path := range paths {
		if p := c.setting(path); p != nil {
			if on, ok := c.boolean(p); ok && !on {
				return false
			}
		}
	}
	return true
}

func (c *converter) nacos() *registry {
	const pre = "spring.cloud.nacos.discovery"
	addr := c.setting(pre + ".server-addr")
	if addr == nil {
		addr = c.setting("spring.cloud.nacos.server-addr")
	}
	if addr == nil || !c.enabled(pre+".enabled") {
		return nil
	}
	s, ok := c.str(addr)
	if !ok {
		return nil
	}
	servers := splitList(s)
	fields := map[string]*prop{}
	for _, k := range []string{"namespace", "group", "username", "password"} {
		p := c.setting(pre + "." + k)
		if p == nil && (k == "username" || k == "password" || k == "namespace") {
			p = c.setting("spring.cloud.nacos." + k)
		}
		if p != nil && !p.isNull() {
			fields[k] = p
		}
	}
	var interval *prop
	if p := c.setting(pre + ".watch-delay"); p != nil {
		interval = p
	}
	return &registry{name: "nacos", at: addr, discovery: func(svc string, at *yaml.Node) *yaml.Node {
		n := mapNode(at)
		add(n, "type", strNode("nacos", at))
		add(n, "servers", flowList(servers, addr.value))
		add(n, "service", strNode(svc, at))
		for _, k := range []string{"namespace", "group", "username", "password"} {
			if p := fields[k]; p != nil {
				if v, ok := c.str(p); ok && v != "" {
					add(n, k, strNode(v, p.value))
				}
			}
		}
		if interval != nil {
			if d, ok := c.duration(interval, time.Millisecond); ok && d > 0 {
				add(n, "interval", strNode(formatDuration(d), interval.value))
			}
		}
		return n
	}}
}

func (c *converter) eureka() *registry {
	client := c.root.get("eureka.client")
	if client == nil || !c.enabled("eureka.client.enabled", "eureka.client.fetch-registry") {
		return nil
	}
	urls := client.kid("service-url")
	var zones []string // the client's own zone first, then defaultZone, then the others
	if z := c.root.get("eureka.instance.metadata-map.zone"); z != nil {
		if s, ok := c.str(z); ok {
			zones = append(zones, s)
		}
	}
	zones = append(zones, "defaultZone")
	for _, k := range urls.kidsOrEmpty() {
		zones = append(zones, k.name)
	}
	var servers []string
	at := client
	for _, z := range zones {
		p := urls.kid(z)
		if p == nil {
			continue
		}
		if l, ok := c.list(p); ok {
			for _, u := range l {
				if !slices.Contains(servers, u) {
					servers = append(servers, u)
				}
			}
			if at == client {
				at = p
			}
		}
	}
	if len(servers) == 0 {
		servers = []string{"http://localhost:8761/eureka/"} // Spring's default
	}
	var interval, delta *prop
	if p := c.setting("eureka.client.registry-fetch-interval-seconds"); p != nil {
		interval = p
	}
	if p := c.setting("eureka.client.disable-delta"); p != nil {
		delta = p
	}
	return &registry{name: "eureka", at: at, discovery: func(svc string, pos *yaml.Node) *yaml.Node {
		n := mapNode(pos)
		add(n, "type", strNode("eureka", pos))
		add(n, "servers", flowList(servers, at.value))
		add(n, "service", strNode(svc, pos))
		if interval != nil {
			if d, ok := c.duration(interval, time.Second); ok && d > 0 {
				add(n, "interval", strNode(formatDuration(d), interval.value))
			}
		}
		if delta != nil {
			if off, ok := c.boolean(delta); ok {
				add(n, "delta", boolNode(!off, delta.value))
			}
		}
		return n
	}}
}

func (c *converter) consul() *registry {
	const pre = "spring.cloud.consul"
	root := c.root.get(pre)
	if root == nil || !c.enabled(pre+".enabled", pre+".discovery.enabled") {
		return nil
	}
	host, port, scheme := "localhost", "8500", "http"
	if p := c.setting(pre + ".host"); p != nil {
		if s, ok := c.str(p); ok {
			host = s
		}
	}
	if p := c.setting(pre + ".port"); p != nil {
		if n, ok := c.integer(p); ok {
			port = strconv.FormatInt(n, 10)
		}
	}
	if p := c.setting(pre + ".scheme"); p != nil {
		if s, ok := c.str(p); ok {
			scheme = strings.ToLower(s)
		}
	}
	if strings.Contains(host, "://") { // Spring accepts host: https://consul
		scheme, host, _ = strings.Cut(host, "://")
	}
	if tls := root.kid("tls"); tls != nil {
		tls.markAll()
		c.errorf(tls.key, tls.path, "not supported: client certificates for Consul; use Consul over https with a token")
	}
	var token *prop
	for _, path := range []string{pre + ".discovery.acl-token", pre + ".token"} {
		if p := c.setting(path); p != nil && token == nil {
			token = p
		}
	}
	if p := c.setting(pre + ".discovery.query-passing"); p != nil {
		if on, ok := c.boolean(p); ok && !on {
			c.warnf(p.value, p.path, "differs: Sluice sends requests only to instances whose Consul checks pass, as with query-passing: true")
		}
	}
	defaultTag := c.setting(pre + ".discovery.default-query-tag")
	addr := scheme + "://" + host + ":" + port
	return &registry{name: "consul", at: root, discovery: func(svc string, at *yaml.Node) *yaml.Node {
		n := mapNode(at)
		add(n, "type", strNode("consul", at))
		add(n, "servers", flowList([]string{addr}, root.key))
		add(n, "service", strNode(svc, at))
		tag := c.root.get(pre + ".discovery.server-list-query-tags").kid(svc)
		if tag == nil {
			tag = defaultTag
		}
		if tag != nil {
			if s, ok := c.str(tag); ok && s != "" {
				add(n, "tag", strNode(s, tag.value))
			}
		}
		if dc := c.root.get(pre + ".discovery.datacenters").kid(svc); dc != nil {
			if s, ok := c.str(dc); ok && s != "" {
				add(n, "datacenter", strNode(s, dc.value))
			}
		}
		if token != nil {
			if s, ok := c.str(token); ok && s != "" {
				add(n, "token", strNode(s, token.value))
			}
		}
		return n
	}}
}

func (c *converter) kubernetes() *registry {
	const pre = "spring.cloud.kubernetes"
	root := c.root.get(pre)
	if root == nil || !c.enabled(pre+".enabled", pre+".discovery.enabled") {
		return nil
	}
	ns := ""
	if p := c.root.get(pre + ".discovery.all-namespaces"); p != nil {
		if all, ok := c.boolean(p); ok && all {
			c.errorf(p.value, p.path, "not supported: services from every namespace; list one in spring.cloud.kubernetes.discovery.namespaces")
		}
	}
	if p := c.root.get(pre + ".discovery.namespaces"); p != nil {
		if l, ok := c.list(p); ok {
			switch {
			case len(l) == 1:
				ns = l[0]
			case len(l) > 1:
				c.errorf(p.value, p.path, "not supported: services merged from several namespaces; list one")
			}
		}
	}
	port := ""
	if p := c.setting(pre + ".discovery.primary-port-name"); p != nil {
		if s, ok := c.str(p); ok {
			port = s
		}
	}
	return &registry{name: "kubernetes", at: root, discovery: func(svc string, at *yaml.Node) *yaml.Node {
		return kubeNode(strings.ToLower(svc), ns, port, at)
	}}
}

func kubeNode(svc, ns, port string, at *yaml.Node) *yaml.Node {
	n := mapNode(at)
	add(n, "type", strNode("kubernetes", at))
	add(n, "service", strNode(svc, at))
	if ns != "" {
		add(n, "namespace", strNode(ns, at))
	}
	if port != "" {
		add(n, "port", strNode(port, at))
	}
	return n
}

func flowList(l []string, at *yaml.Node) *yaml.Node {
	n := seqNode(at)
	n.Style = yaml.FlowStyle
	for _, s := range l {
		n.Content = append(n.Content, strNode(s, at))
	}
	return n
}

// kidsOrEmpty is p's children; none for a nil p.
func (p *prop) kidsOrEmpty() []*prop {
	if p == nil {
		return nil
	}
	return p.kids
}

// configCenters reports configuration that Spring loads from a server at
// start (Nacos config, Spring Cloud Config, Consul KV): the routes and
// settings it holds would be missing, so each is an error.
func (c *converter) configCenters() {
	if cfg := c.root.get("spring.cloud.nacos.config"); cfg != nil && c.enabled("spring.cloud.nacos.config.enabled") {
		at := cfg.kid("server-addr")
		if at == nil {
			at = c.root.get("spring.cloud.nacos.server-addr")
		}
		if at != nil {
			c.errorf(at.value, at.path, "not supported: properties kept in Nacos config (routes, filters …) are not read; "+
				"export them into this file, or set spring.cloud.nacos.config.enabled: false if it holds none")
		}
	}
	if p := c.root.get("spring.config.import"); p != nil {
		l, _ := c.list(p)
		for _, s := range l {
			if i := strings.Index(strings.TrimPrefix(s, "optional:"), ":"); i > 0 && !strings.HasPrefix(strings.TrimPrefix(s, "optional:"), "file:") &&
				!strings.HasPrefix(strings.TrimPrefix(s, "optional:"), "classpath:") {
				c.errorf(p.value, p.path, "not supported: %q imports properties from a server, which Sluice does not read; put them in this file", s)
			}
		}
	}
	if p := c.setting("spring.cloud.config.uri"); p != nil && c.enabled("spring.cloud.config.enabled") {
		c.str(p)
		c.errorf(p.value, p.path, "not supported: properties from Spring Cloud Config are not read; put them in this file")
	}
}
