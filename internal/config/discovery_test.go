package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDiscovery(t *testing.T) {
	c, err := Parse("sluice.yaml", []byte(`
upstreams:
  a:
    discovery: {type: dns, name: api.internal, port: 8080, resolver: "127.0.0.1:53", max_ttl: 10s}
  b:
    discovery: {type: dns, name: _http._tcp.api.internal, record: SRV}
  c:
    discovery: {type: file, path: /etc/sluice/endpoints.yaml}
  d:
    discovery: {type: kubernetes, namespace: shop, service: orders, port: http}
routes:
  - {id: a, uri: lb://a}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Discovery{
		"a": {Type: "dns", Name: "api.internal", Record: "A+AAAA", Port: "8080", Resolver: "127.0.0.1:53", MinTTL: time.Second, MaxTTL: 10 * time.Second, Timeout: 2 * time.Second, Interval: time.Second},
		"b": {Type: "dns", Name: "_http._tcp.api.internal", Record: "SRV", MinTTL: time.Second, MaxTTL: 30 * time.Second, Timeout: 2 * time.Second, Interval: time.Second},
		"c": {Type: "file", Path: "/etc/sluice/endpoints.yaml", Record: "A+AAAA", MinTTL: time.Second, MaxTTL: 30 * time.Second, Timeout: 2 * time.Second, Interval: time.Second},
		"d": {Type: "kubernetes", Namespace: "shop", Service: "orders", Port: "http", Record: "A+AAAA", MinTTL: time.Second, MaxTTL: 30 * time.Second, Timeout: 2 * time.Second, Interval: time.Second},
	}
	for name, w := range want {
		diff(t, *c.Upstreams[name].Discovery, w)
	}
}

func TestParseDiscoveryErrors(t *testing.T) {
	tests := []struct {
		desc, yaml string
		want       []string
	}{
		{
			desc: "endpoints and discovery",
			yaml: "upstreams:\n  a:\n    endpoints: [h:1]\n    discovery: {type: file, path: x}\n",
			want: []string{`sluice.yaml:4:16: upstreams.a.discovery: endpoints and discovery are alternatives: set one of them`},
		},
		{
			desc: "neither",
			yaml: "upstreams:\n  a: {protocol: http1}\n",
			want: []string{`sluice.yaml:2:3: upstreams.a: missing required key "endpoints" (or "discovery")`},
		},
		{
			desc: "unknown type and missing type",
			yaml: "upstreams:\n  a:\n    discovery: {type: dsn}\n  b:\n    discovery: {name: x}\n",
			want: []string{
				`sluice.yaml:3:23: upstreams.a.discovery.type: "dsn" is not one of consul, dns, eureka, file, kubernetes, nacos (did you mean dns?)`,
				`sluice.yaml:5:16: upstreams.b.discovery: missing required key "type"`,
			},
		},
		{
			desc: "dns problems",
			yaml: `
upstreams:
  a:
    discovery:
      type: dns
      name: "bad name"
      port: 0
      record: MX
      resolver: nowhere
      min_ttl: 10s
      max_ttl: 1s
      path: /x
`,
			want: []string{
				`sluice.yaml:6:13: upstreams.a.discovery.name: "bad name" is not a DNS name`,
				`sluice.yaml:7:13: upstreams.a.discovery.port: "0" is not a port number from 1 to 65535`,
				`sluice.yaml:8:15: upstreams.a.discovery.record: "MX" is not one of A, AAAA, A+AAAA, SRV (did you mean A?)`,
				`sluice.yaml:9:17: upstreams.a.discovery.resolver: "nowhere" is not a valid address: missing port in address`,
				`sluice.yaml:11:16: upstreams.a.discovery.max_ttl: must not be less than min_ttl (10s)`,
				`sluice.yaml:12:13: upstreams.a.discovery.path: is not used with type dns (it belongs to file)`,
			},
		},
		{
			desc: "dns without port; SRV with one",
			yaml: "upstreams:\n  a: {discovery: {type: dns, name: a.b}}\n  b: {discovery: {type: dns, name: a.b, record: SRV, port: 80}}\n",
			want: []string{
				`sluice.yaml:2:18: upstreams.a.discovery: missing required key "port"`,
				`sluice.yaml:3:60: upstreams.b.discovery.port: is not used with SRV records (they carry the port)`,
			},
		},
		{
			desc: "registry problems",
			yaml: "upstreams:\n  a: {discovery: {type: consul, service: x, servers: [c1, c2]}}\n  b: {discovery: {type: eureka, service: x, servers: [e1:8761], tag: v2}}\n  c: {discovery: {type: nacos, service: 'a b', password: p, servers: ['ftp://n']}}\n  d: {discovery: {type: nacos, service: x}}\n",
			want: []string{
				`sluice.yaml:2:54: upstreams.a.discovery.servers: consul takes one address (its local agent)`,
				`sluice.yaml:3:55: upstreams.b.discovery.servers[0]: "e1:8761" is not a service URL like http://eureka:8761/eureka/`,
				`sluice.yaml:3:70: upstreams.b.discovery.tag: is not used with type eureka (it belongs to consul)`,
				`sluice.yaml:4:41: upstreams.c.discovery.service: "a b" is not a service name`,
				`sluice.yaml:4:58: upstreams.c.discovery.password: is set without username`,
				`sluice.yaml:4:71: upstreams.c.discovery.servers[0]: "ftp://n" is not a registry address like host:port or http://host:port`,
				`sluice.yaml:5:18: upstreams.d.discovery: missing required key "servers"`,
			},
		},
		{
			desc: "file and kubernetes problems",
			yaml: "upstreams:\n  a: {discovery: {type: file, interval: 0s}}\n  b: {discovery: {type: kubernetes, service: Orders, namespace: a_b, kubeconfig: /nonexistent/kubeconfig}}\n  c: {discovery: {type: kubernetes, nmae: x}}\n",
			want: []string{
				`sluice.yaml:2:18: upstreams.a.discovery: missing required key "path"`,
				`sluice.yaml:2:41: upstreams.a.discovery.interval: must be greater than 0`,
				`sluice.yaml:3:46: upstreams.b.discovery.service: "Orders" is not a Service name (lower-case letters, digits and '-')`,
				`sluice.yaml:3:65: upstreams.b.discovery.namespace: "a_b" is not a namespace name (lower-case letters, digits and '-')`,
				`sluice.yaml:3:82: upstreams.b.discovery.kubeconfig: file "/nonexistent/kubeconfig" does not exist`,
				`sluice.yaml:4:18: upstreams.c.discovery: missing required key "service"`,
				`sluice.yaml:4:37: upstreams.c.discovery: unknown key "nmae" (did you mean name?)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; want\n%s", strings.Join(tc.want, "\n"))
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestKubernetesDefault: in a pod, an upstream named SERVICE.NAMESPACE
// without endpoints follows that Service.
func TestKubernetesDefault(t *testing.T) {
	defer func(f func() bool) { InCluster = f }(InCluster)
	yaml := "upstreams:\n  orders.shop: {}\nroutes:\n  - {id: a, uri: lb://orders.shop}\n"

	InCluster = func() bool { return false }
	if _, err := Parse("sluice.yaml", []byte(yaml)); err == nil || !strings.Contains(err.Error(), `missing required key "endpoints"`) {
		t.Fatalf("outside a cluster: %v", err)
	}
	InCluster = func() bool { return true }
	c, err := Parse("sluice.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Upstreams["orders.shop"].Discovery
	if d == nil || d.Type != "kubernetes" || d.Service != "orders" || d.Namespace != "shop" || !d.Implicit {
		t.Fatalf("discovery %+v", d)
	}
}
