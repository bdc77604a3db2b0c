package config

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Discovery finds an upstream's endpoints at run time, as an alternative to
// a fixed endpoints list. Which keys apply depends on Type.
type Discovery struct {
	Type string `yaml:"type"` // dns, file, kubernetes, nacos, eureka or consul

	// dns: Name is resolved in the background; Record is A, AAAA, A+AAAA
	// (default) or SRV; Port is the port of A/AAAA addresses (SRV records
	// carry their own). The next lookup waits the answer's TTL, bounded by
	// MinTTL and MaxTTL. Resolver is host:port ("" = /etc/resolv.conf).
	Name     string        `yaml:"name"`
	Record   string        `yaml:"record"`
	Resolver string        `yaml:"resolver"`
	MinTTL   time.Duration `yaml:"min_ttl"`
	MaxTTL   time.Duration `yaml:"max_ttl"`
	Timeout  time.Duration `yaml:"timeout"`

	// file: Path is a YAML or JSON file of endpoints, polled every Interval.
	Path     string        `yaml:"path"`
	Interval time.Duration `yaml:"interval"`

	// kubernetes: the EndpointSlices of Service in Namespace (default: the
	// pod's own namespace, else "default"); Port names the Service port ("" =
	// the only or first one). Kubeconfig "" = in-cluster, else $KUBECONFIG
	// or ~/.kube/config.
	Namespace  string `yaml:"namespace"`
	Service    string `yaml:"service"`
	Kubeconfig string `yaml:"kubeconfig"`

	// Port is the dns port number, or the kubernetes port name.
	Port string `yaml:"port"`

	// nacos, eureka, consul: the instances of Service in a registry.
	// Servers are the registry's addresses, tried in turn: nacos host:port
	// (8848 by default); eureka service URLs like http://host:8761/eureka/;
	// consul one host:port (8500 by default), or https://host:port.
	// Interval is the time between fetches (nacos, default 10s, followed
	// at once when Nacos pushes a change; eureka, default 30s). Consul
	// follows changes with blocking queries instead.
	Servers []string `yaml:"servers"`

	// nacos: Namespace is the namespace id ("" = public); Group ("" =
	// DEFAULT_GROUP); Clusters the cluster names to use (none: all);
	// Username and Password log in for an access token; Push subscribes to
	// Nacos's UDP push of changes (default true).
	Group    string   `yaml:"group"`
	Clusters []string `yaml:"clusters"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Push     bool     `yaml:"push"`

	// eureka: Delta fetches only the registry's changes after the first
	// full fetch (default true).
	Delta bool `yaml:"delta"`

	// consul: only instances with Tag ("" = all), in Datacenter ("" = the
	// agent's), with the ACL Token.
	Tag        string `yaml:"tag"`
	Datacenter string `yaml:"datacenter"`
	Token      string `yaml:"token"`

	// Implicit marks discovery chosen by default: an upstream named
	// SERVICE.NAMESPACE without endpoints, in a Kubernetes pod.
	Implicit bool `yaml:"-"`
}

// Discovery types.
const (
	DiscoveryDNS        = "dns"
	DiscoveryFile       = "file"
	DiscoveryKubernetes = "kubernetes"
	DiscoveryNacos      = "nacos"
	DiscoveryEureka     = "eureka"
	DiscoveryConsul     = "consul"
)

func (d *Discovery) setDefaults() {
	d.Record = "A+AAAA"
	d.MinTTL = time.Second
	d.MaxTTL = 30 * time.Second
	d.Timeout = 2 * time.Second
	d.Interval = time.Second
	d.Push = true
	d.Delta = true
}

// discoveryKeys lists the keys each discovery type takes besides type.
var discoveryKeys = map[string][]string{
	DiscoveryDNS:        {"name", "record", "port", "resolver", "min_ttl", "max_ttl", "timeout"},
	DiscoveryFile:       {"path", "interval"},
	DiscoveryKubernetes: {"namespace", "service", "port", "kubeconfig"},
	DiscoveryNacos:      {"servers", "service", "namespace", "group", "clusters", "username", "password", "interval", "push"},
	DiscoveryEureka:     {"servers", "service", "interval", "delta"},
	DiscoveryConsul:     {"servers", "service", "tag", "datacenter", "token"},
}

// registryIntervals are the default fetch intervals of the registries.
var registryIntervals = map[string]time.Duration{DiscoveryNacos: 10 * time.Second, DiscoveryEureka: 30 * time.Second}

// InCluster reports whether Sluice runs in a Kubernetes pod; a variable for tests.
var InCluster = func() bool { return os.Getenv("KUBERNETES_SERVICE_HOST") != "" }

// podNamespace is the namespace of the pod Sluice runs in, or "default".
var podNamespace = func() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if ns := strings.TrimSpace(string(b)); err == nil && ns != "" {
		return ns
	}
	return "default"
}

// dnsLabelRE is a Kubernetes object name (RFC 1123 label).
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// checkEndpointSource checks that u has exactly one of endpoints and
// discovery, and checks its discovery. An upstream named SERVICE.NAMESPACE
// with neither gets Kubernetes discovery when running in a pod.
func (d *decoder) checkEndpointSource(u *Upstream) {
	p := u.Path
	switch {
	case u.Discovery != nil && len(u.Endpoints) > 0:
		d.invalid(p+".discovery", "endpoints and discovery are alternatives: set one of them")
	case u.Discovery != nil:
		d.checkDiscovery(u.Discovery, p+".discovery")
	case len(u.Endpoints) > 0:
	case InCluster() && isServiceName(u.Name):
		svc, ns, _ := strings.Cut(u.Name, ".")
		u.Discovery = &Discovery{Type: DiscoveryKubernetes, Service: svc, Namespace: ns, Implicit: true}
	default:
		if _, ok := d.at[p+".endpoints"]; ok {
			d.invalid(p+".endpoints", "at least one endpoint is required")
			return
		}
		d.errorf(u.Pos, p, `missing required key "endpoints" (or "discovery")`)
	}
}

// isServiceName reports whether name is SERVICE.NAMESPACE.
func isServiceName(name string) bool {
	svc, ns, ok := strings.Cut(name, ".")
	return ok && dnsLabelRE.MatchString(svc) && dnsLabelRE.MatchString(ns)
}

func (d *decoder) checkDiscovery(ds *Discovery, p string) {
	if ds.Type == "" {
		d.missing(d.pos(p), p, "type", "must be dns, file, kubernetes, nacos, eureka or consul")
		return
	}
	ds.Push = ds.Push && ds.Type == DiscoveryNacos
	ds.Delta = ds.Delta && ds.Type == DiscoveryEureka
	keys, ok := discoveryKeys[ds.Type]
	if !ok {
		d.oneOf(p+".type", ds.Type, slices.Sorted(maps.Keys(discoveryKeys))...)
		return
	}
	for _, other := range slices.Sorted(maps.Keys(discoveryKeys)) {
		for _, k := range discoveryKeys[other] {
			if _, set := d.at[p+"."+k]; set && !slices.Contains(keys, k) {
				d.invalid(p+"."+k, "is not used with type %s (it belongs to %s)", ds.Type, other)
			}
		}
	}
	switch ds.Type {
	case DiscoveryDNS:
		switch {
		case ds.Name == "":
			d.missing(d.pos(p), p, "name", "must not be empty")
		case !isHostname(ds.Name):
			d.invalid(p+".name", "%q is not a DNS name", ds.Name)
		}
		d.oneOf(p+".record", ds.Record, "A", "AAAA", "A+AAAA", "SRV")
		if ds.Record == "SRV" {
			if ds.Port != "" {
				d.invalid(p+".port", "is not used with SRV records (they carry the port)")
			}
		} else if n, err := strconv.Atoi(ds.Port); ds.Port == "" {
			d.missing(d.pos(p), p, "port", "must not be empty")
		} else if err != nil || n < 1 || n > 65535 {
			d.invalid(p+".port", "%q is not a port number from 1 to 65535", ds.Port)
		}
		if ds.Resolver != "" {
			if _, _, err := splitHostPort(ds.Resolver, false); err != nil {
				d.invalid(p+".resolver", "%q is not a valid address: %v", ds.Resolver, err)
			}
		}
		if d.positive(p+".min_ttl", int64(ds.MinTTL)) && ds.MaxTTL < ds.MinTTL {
			d.invalid(p+".max_ttl", "must not be less than min_ttl (%s)", ds.MinTTL)
		}
		d.positive(p+".timeout", int64(ds.Timeout))
	case DiscoveryFile:
		if ds.Path == "" {
			d.missing(d.pos(p), p, "path", "must not be empty")
		}
		d.positive(p+".interval", int64(ds.Interval))
	case DiscoveryKubernetes:
		switch {
		case ds.Service == "":
			d.missing(d.pos(p), p, "service", "must not be empty")
		case !dnsLabelRE.MatchString(ds.Service):
			d.invalid(p+".service", "%q is not a Service name (lower-case letters, digits and '-')", ds.Service)
		}
		switch {
		case ds.Namespace == "":
			ds.Namespace = podNamespace()
		case !dnsLabelRE.MatchString(ds.Namespace):
			d.invalid(p+".namespace", "%q is not a namespace name (lower-case letters, digits and '-')", ds.Namespace)
		}
		d.checkFiles(p, map[string]string{"kubeconfig": ds.Kubeconfig})
	case DiscoveryNacos, DiscoveryEureka, DiscoveryConsul:
		d.checkRegistry(ds, p)
	}
}

// checkRegistry checks the discovery of a service registry.
func (d *decoder) checkRegistry(ds *Discovery, p string) {
	if ds.Service == "" || len(ds.Service) > 255 || strings.ContainsAny(ds.Service, "/?#@ \t\n") {
		d.invalid(p+".service", "%q is not a service name", ds.Service)
	}
	if len(ds.Servers) == 0 {
		d.missing(d.pos(p), p, "servers", "list the registry's addresses")
	}
	if ds.Type == DiscoveryConsul && len(ds.Servers) > 1 {
		d.invalid(p+".servers", "consul takes one address (its local agent)")
	}
	for i, s := range ds.Servers {
		if err := checkRegistryAddr(ds.Type, s); err != nil {
			d.invalid(fmt.Sprintf("%s.servers[%d]", p, i), "%v", err)
		}
	}
	if _, set := d.at[p+".interval"]; !set {
		ds.Interval = registryIntervals[ds.Type]
	} else {
		d.positive(p+".interval", int64(ds.Interval))
	}
	if ds.Username == "" && ds.Password != "" {
		d.invalid(p+".password", "is set without username")
	}
}

// checkRegistryAddr checks a registry address: host:port or
// http(s)://host[:port][/path]; eureka needs the URL form.
func checkRegistryAddr(typ, s string) error {
	raw := s
	if !strings.Contains(s, "://") {
		if typ == DiscoveryEureka {
			return fmt.Errorf("%q is not a service URL like http://eureka:8761/eureka/", raw)
		}
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a registry address like host:port or http://host:port", raw)
	}
	if u.User != nil && typ != DiscoveryEureka {
		return fmt.Errorf("%q: credentials go in username and password (nacos) or token (consul)", raw)
	}
	return nil
}

// String describes the discovery for logs, like "dns api.internal:8080".
func (ds *Discovery) String() string {
	switch ds.Type {
	case DiscoveryDNS:
		if ds.Record == "SRV" {
			return "dns SRV " + ds.Name
		}
		return fmt.Sprintf("dns %s %s:%s", ds.Record, ds.Name, ds.Port)
	case DiscoveryFile:
		return "file " + ds.Path
	case DiscoveryKubernetes:
		return fmt.Sprintf("kubernetes %s/%s port %q", ds.Namespace, ds.Service, ds.Port)
	case DiscoveryNacos, DiscoveryEureka, DiscoveryConsul:
		return fmt.Sprintf("%s %s at %s", ds.Type, ds.Service, strings.Join(ds.Servers, ","))
	}
	return ds.Type
}

// ParseDiscovery reads a discovery block on its own, as a converter from
// another format builds it, with the checks and defaults of an upstream's
// discovery. path names the block in errors.
func ParseDiscovery(file string, n *yaml.Node, path string) (*Discovery, Errors) {
	d := newDecoder(file)
	ds := newValue(reflect.TypeFor[Discovery]()).Addr().Interface().(*Discovery)
	d.decode(n, reflect.ValueOf(ds).Elem(), path)
	d.checkDiscovery(ds, path)
	d.errs.sort()
	return ds, d.errs
}
