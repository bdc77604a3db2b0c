package config

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Discovery finds an upstream's endpoints at run time, as an alternative to
// a fixed endpoints list. Which keys apply depends on Type.
type Discovery struct {
	Type string `yaml:"type"` // dns, file or kubernetes

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

	// Implicit marks discovery chosen by default: an upstream named
	// SERVICE.NAMESPACE without endpoints, in a Kubernetes pod.
	Implicit bool `yaml:"-"`
}

// Discovery types.
const (
	DiscoveryDNS        = "dns"
	DiscoveryFile       = "file"
	DiscoveryKubernetes = "kubernetes"
)

func (d *Discovery) setDefaults() {
	d.Record = "A+AAAA"
	d.MinTTL = time.Second
	d.MaxTTL = 30 * time.Second
	d.Timeout = 2 * time.Second
	d.Interval = time.Second
}

// discoveryKeys lists the keys each discovery type takes besides type.
var discoveryKeys = map[string][]string{
	DiscoveryDNS:        {"name", "record", "port", "resolver", "min_ttl", "max_ttl", "timeout"},
	DiscoveryFile:       {"path", "interval"},
	DiscoveryKubernetes: {"namespace", "service", "port", "kubeconfig"},
}

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
		d.missing(d.pos(p), p, "type", "must be dns, file or kubernetes")
		return
	}
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
	}
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
	}
	return ds.Type
}
