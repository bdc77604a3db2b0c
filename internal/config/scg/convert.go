package scg

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/config"
)

// gatewayRoots are where Spring Cloud Gateway reads its properties: the
// classic prefix and, since 4.1, the WebFlux server's.
var gatewayRoots = []string{"spring.cloud.gateway", "spring.cloud.gateway.server.webflux"}

// javaOnly are the filters and predicates that need the JVM (Spring beans,
// sessions, Java code), with what to use instead.
var javaOnly = map[string]string{
	"TokenRelay":               "it relays an OAuth2 token from Spring Security's session; use the TokenAuth or JWT filter",
	"SaveSession":              "it saves a Spring WebSession, which Sluice does not have",
	"ModifyRequestBody":        "it runs Java code given in the Java DSL",
	"ModifyResponseBody":       "it runs Java code given in the Java DSL",
	"JsonToGrpc":               "it needs protobuf descriptors loaded in the JVM",
	"Hystrix":                  "Hystrix was removed from Spring Cloud Gateway; use CircuitBreaker",
	"ReadBody":                 "it runs a Java predicate on the body",
	"CloudFoundryRouteService": "Cloud Foundry route services are not supported",
}

type converter struct {
	file string
	env  Env
	root *prop
	res  *Result

	server, admin, upstreamDefaults, redis, cors, compression *yaml.Node
	defaultFilters, routes                                    *yaml.Node
	ups                                                       map[string]*upstream
	upsOrder                                                  []string
	placeholders                                              int // resolved so far
	reg                                                       *registry
	regDone                                                   bool
	jwt                                                       *yaml.Node // the resource server's JWT filter
	jwtAt                                                     *prop
	// defAt is where each converted predicate or filter was in its Spring
	// list (a TokenRelay left out shifts the ones after it).
	defAt map[*yaml.Node]string
	// loc is the enabled discovery locator; services are the registry's
	// services to write its routes for.
	loc      *locatorSpec
	services []string
	// forwardedPrefix: X-Forwarded-Prefix is sent (x-forwarded.prefix-enabled).
	forwardedPrefix *bool
}

// upstream is an upstream made for lb://NAME.
type upstream struct {
	node    *yaml.Node
	connect *prop // the route metadata that set connect_timeout, if any
}

func (c *converter) problem(n *yaml.Node, path, format string, a ...any) *config.Error {
	return &config.Error{File: c.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, a...)}
}

// errorf lists a part Sluice cannot reproduce.
func (c *converter) errorf(n *yaml.Node, path, format string, a ...any) {
	c.res.Errors = append(c.res.Errors, c.problem(n, path, format, a...))
}

// warnf lists a part left out that does not change how requests are handled.
func (c *converter) warnf(n *yaml.Node, path, format string, a ...any) {
	c.res.Warnings = append(c.res.Warnings, c.problem(n, path, format, a...))
}

// mapPath records that the native path came from the Spring property path.
func (c *converter) mapPath(native, spring string) { c.res.paths[native] = spring }

func (c *converter) convert() {
	c.server = mapNode(c.root.value)
	c.serverBlock()
	c.securityBlock()
	// The discovery locator's routes come first: Spring registers its
	// route locator before the properties' one, and sorting by order keeps that.
	for _, r := range gatewayRoots {
		if gw := c.root.get(r); gw != nil {
			c.locatorBlock(gw)
		}
	}
	c.locatorRoutes()
	for _, r := range gatewayRoots {
		gw := c.root.get(r)
		if gw == nil {
			continue
		}
		c.routesBlock(gw)
		c.forwardedBlock(gw)
		c.filtersBlock(gw)
		c.corsBlock(gw)
		c.httpClient(gw, r)
		if p := gw.kid("enabled"); p != nil {
			if on, ok := c.boolean(p); ok && !on {
				c.errorf(p.value, p.path, "not supported: the gateway is disabled; Sluice has no disabled mode")
			}
		}
	}
	c.hostPort()
	add(c.server, "forwarded_prefix", boolNode(c.forwardedPrefix == nil || *c.forwardedPrefix, c.root.value))
	c.redisBlock()
	c.configCenters()
	c.addJWT()
	if krs := c.root.get("sluice.key-resolvers"); krs != nil {
		krs.unused(func(p *prop) {
			p.used = true
			c.warnf(p.key, p.path, "ignored: no route uses the key-resolver bean %q", p.name)
		})
	}
	if inst := c.root.get("spring.cloud.discovery.client.simple.instances"); inst != nil {
		for _, svc := range inst.kids {
			if c.ups[svc.name] == nil && !svc.used {
				svc.markAll()
				c.warnf(svc.key, svc.path, "ignored: no route has uri lb://%s", svc.name)
			}
		}
	}
	if p := c.root.get("spring.profiles.active"); p != nil {
		p.markAll() // it chose the profiles' documents (applyProfiles)
		if v, ok := c.env("SPRING_PROFILES_ACTIVE"); ok {
			c.warnf(p.value, p.path, "ignored: SPRING_PROFILES_ACTIVE=%q overrides it, as in Spring", v)
		}
	}
	c.root.unused(c.leftover)

	doc := mapNode(c.root.value)
	for _, b := range []struct {
		key string
		n   *yaml.Node
	}{
		{"server", c.server}, {"admin", c.admin}, {"upstream_defaults", c.upstreamDefaults}, {"redis", c.redis}, {"cors", c.cors}, {"compression", c.compression},
		{"upstreams", c.upstreamsNode()}, {"default_filters", c.defaultFilters}, {"routes", c.routes},
	} {
		if b.n != nil && len(b.n.Content) > 0 {
			add(doc, b.key, b.n)
		}
	}
	c.res.Native = doc
}

// hostPort sets server.host_include_port: Spring Cloud Gateway's Host
// predicate matches the Host header with its port (include-port, true by
// default; all versions but 4.1.0, which ignored the port).
func (c *converter) hostPort() {
	on, at := true, c.root.value
	for _, r := range gatewayRoots {
		if p := c.root.get(r + ".predicate.host.include-port"); p != nil {
			if b, ok := c.boolean(p); ok {
				on, at = b, p.value
				c.mapPath("server.host_include_port", p.path)
			}
		}
	}
	add(c.server, "host_include_port", boolNode(on, at))
}

// serverBlock converts server.port and server.address into server.listen.
// Without them, Spring listens on every interface, port 8080, and so does the import.
func (c *converter) serverBlock() {
	port, addr := c.setting("server.port"), c.setting("server.address")
	host, portNum, at, path := "", "8080", c.root.value, "server.port"
	if addr != nil {
		if s, ok := c.str(addr); ok {
			host, at, path = s, addr.value, addr.path
		}
	}
	if port != nil {
		if n, ok := c.integer(port); ok {
			portNum, at, path = strconv.FormatInt(n, 10), port.value, port.path
			if n < 0 {
				c.errorf(port.value, port.path, "not supported: a negative port disables HTTP in Spring; Sluice always listens")
			}
		}
	}
	add(c.server, "listen", strNode(net.JoinHostPort(host, portNum), at))
	c.mapPath("server.listen", path)
	c.adminBlock(host)
	c.compressionBlock()
	for _, name := range []string{"server.max-http-request-header-size", "server.max-http-header-size"} {
		if p := c.root.get(name); p != nil {
			if s, ok := c.str(p); ok {
				n, err := parseDataSize(s)
				if err != nil {
					c.errorf(p.value, p.path, "%v", err)
					continue
				}
				add(c.server, "max_header_bytes", intNode(n, p.value))
				c.mapPath("server.max_header_bytes", p.path)
			}
		}
	}
}

// compressionBlock converts Spring Boot's server.compression into the
// native compression block.
func (c *converter) compressionBlock() {
	sc := c.root.get("server.compression")
	if sc == nil {
		return
	}
	c.compression = mapNode(sc.key)
	c.mapPath("compression", sc.path)
	if p := sc.kid("enabled"); p != nil {
		if b, ok := c.boolean(p); ok {
			add(c.compression, "enabled", boolNode(b, p.value))
			c.mapPath("compression.enabled", p.path)
		}
	}
	if p := sc.kid("min-response-size"); p != nil {
		if s, ok := c.str(p); ok {
			if n, err := parseDataSize(s); err != nil {
				c.errorf(p.value, p.path, "%v", err)
			} else {
				add(c.compression, "min_size", intNode(n, p.value))
				c.mapPath("compression.min_size", p.path)
			}
		}
	}
	if p := sc.kid("mime-types"); p != nil {
		if l, ok := c.list(p); ok {
			v := seqNode(p.value)
			v.Style = yaml.FlowStyle
			for _, s := range l {
				v.Content = append(v.Content, strNode(s, p.value))
			}
			add(c.compression, "types", v)
			c.mapPath("compression.types", p.path)
		}
	}
}

// adminBlock converts management.server.port and .address (Spring Boot
// Actuator's own port) into admin.listen; its address defaults to the
// server's, as in Spring, and port -1 turns it off. Without them, the admin
// port keeps Sluice's default.
func (c *converter) adminBlock(serverHost string) {
	port, addr := c.setting("management.server.port"), c.setting("management.server.address")
	if port == nil {
		if addr != nil {
			c.str(addr)
			c.warnf(addr.value, addr.path, "ignored: management.server.address without management.server.port")
		}
		return
	}
	n, ok := c.integer(port)
	if !ok {
		return
	}
	listen := "off"
	if n >= 0 {
		host := serverHost
		if addr != nil {
			if s, ok := c.str(addr); ok {
				host = s
			}
		}
		listen = net.JoinHostPort(host, strconv.FormatInt(n, 10))
	}
	c.admin = mapNode(port.value)
	add(c.admin, "listen", strNode(listen, port.value))
	c.mapPath("admin.listen", port.path)
}

func (c *converter) routesBlock(gw *prop) {
	rp := gw.kid("routes")
	if rp == nil || rp.isNull() {
		return
	}
	if rp.value.Kind != yaml.SequenceNode {
		rp.markAll()
		c.errorf(rp.value, rp.path, "expected a list of routes")
		return
	}
	if c.routes == nil {
		c.routes = seqNode(rp.value)
	}
	for _, item := range rp.items {
		if item.value.Kind != yaml.MappingNode {
			item.markAll()
			c.errorf(item.value, item.path, "expected a route (a mapping with id, uri, predicates, filters)")
			continue
		}
		if p := item.kid("enabled"); p != nil {
			if on, ok := c.boolean(p); ok && !on {
				item.markAll()
				c.warnf(p.value, p.path, "ignored: the route is disabled (enabled: false), as in Spring")
				continue
			}
		}
		c.route(item)
	}
}

func (c *converter) route(item *prop) {
	native := fmt.Sprintf("routes[%d]", len(c.routes.Content))
	c.mapPath(native, item.path)
	r := mapNode(item.value)
	c.routes.Content = append(c.routes.Content, r)

	id := fmt.Sprintf("route-%d", len(c.routes.Content))
	if p := item.kid("id"); p != nil {
		if s, ok := c.str(p); ok {
			id = s
			add(r, "id", strNode(s, p.value))
		}
	} else {
		c.warnf(item.value, item.path, "no id: Spring generates a random one; the import names the route %q", id)
		add(r, "id", strNode(id, item.value))
	}
	var lb string
	if p := item.kid("uri"); p != nil {
		lb = c.uri(p, r, native)
	}
	if p := item.kid("order"); p != nil {
		if n, ok := c.integer(p); ok {
			add(r, "order", intNode(n, p.value))
		}
	}
	if p := item.kid("predicates"); p != nil {
		if n := c.definitions(p); n != nil {
			add(r, "predicates", n)
		}
	}
	filters := seqNode(item.value)
	var corsFilter *prop
	if md := item.kid("metadata"); md != nil {
		corsFilter = md.kid("cors")
	}
	if corsFilter != nil {
		// Spring answers a route's CORS before its filters run: the Cors filter comes first.
		f := mapNode(corsFilter.key)
		add(f, "name", strNode("Cors", corsFilter.key))
		add(f, "args", c.corsPolicy(corsFilter, native+".filters[0].args"))
		filters.Content = append(filters.Content, f)
		c.mapPath(native+".filters[0]", corsFilter.path)
	}
	if p := item.kid("filters"); p != nil {
		if n := c.definitions(p); n != nil {
			for j, f := range n.Content {
				c.mapPath(fmt.Sprintf("%s.filters[%d]", native, len(filters.Content)), c.defPath(f, fmt.Sprintf("%s[%d]", p.path, j)))
				filters.Content = append(filters.Content, f)
			}
		}
	}
	if len(filters.Content) > 0 {
		add(r, "filters", filters)
	}
	if p := item.kid("metadata"); p != nil {
		c.metadata(p, r, native, lb)
	}
}

// uri converts a route's uri and returns the upstream name of lb://NAME, or "".
func (c *converter) uri(p *prop, r *yaml.Node, native string) string {
	s, ok := c.str(p)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err == nil && (u.Scheme == "forward" || u.Scheme == "no"):
		c.errorf(p.value, p.path, "not supported: %s: routes answer from handlers inside the Spring application", u.Scheme)
		c.res.reported[native+".uri"] = true
		add(r, "uri", strNode(s, p.value))
		return ""
	case err != nil || u.Host == "":
		add(r, "uri", strNode(s, p.value)) // the config package explains what is wrong
		return ""
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "ws", "wss":
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			c.warnf(p.value, p.path, "ignored: the path and query of %q; Spring Cloud Gateway sends the request's own path, and so does Sluice", s)
			u.Path, u.RawPath, u.RawQuery = "", "", ""
		}
	case "lb":
		name := u.Host
		c.lbUpstream(name, p)
		add(r, "uri", strNode("lb://"+name, p.value))
		return name
	}
	add(r, "uri", strNode(u.String(), p.value))
	return ""
}

// lbUpstream defines the upstream of lb://name, with the static instances
// of Spring's SimpleDiscoveryClient when the file lists them.
func (c *converter) lbUpstream(name string, uri *prop) {
	if c.ups[name] != nil {
		return
	}
	native := "upstreams." + name
	u := &upstream{node: mapNode(uri.value)}
	c.ups[name] = u
	c.upsOrder = append(c.upsOrder, name)
	inst := c.root.get("spring.cloud.discovery.client.simple.instances").kid(name)
	if inst == nil {
		c.mapPath(native, uri.path)
		if reg := c.registry(); reg != nil {
			add(u.node, "discovery", reg.discovery(name, uri.value))
			c.mapPath(native+".discovery", reg.at.path)
			return
		}
		eps := seqNode(uri.value) // for the user to fill in
		eps.Style = yaml.FlowStyle
		add(u.node, "endpoints", eps)
		c.errorf(uri.value, uri.path, "lb://%s: Spring finds the instances of %q by service discovery, and this file configures "+
			"no registry Sluice reads (Nacos, Eureka, Consul, Kubernetes); "+
			"list them under upstreams.%s.endpoints in the converted config (sluice convert scg), "+
			"or in this file as spring.cloud.discovery.client.simple.instances.%s[0].uri", name, name, name, name)
		c.res.reported[native] = true
		return
	}
	eps := seqNode(uri.value)
	eps.Style = yaml.FlowStyle
	add(u.node, "endpoints", eps)
	c.mapPath(native, inst.path)
	if inst.value.Kind != yaml.SequenceNode {
		inst.markAll()
		c.errorf(inst.value, inst.path, "expected a list of instances, each with a uri")
		return
	}
	tls := ""
	for i, it := range inst.items {
		p := it.kid("uri")
		if p == nil {
			c.errorf(it.value, it.path, "an instance without a uri")
			continue
		}
		s, ok := c.str(p)
		if !ok {
			continue
		}
		eu, err := url.Parse(s)
		if err != nil {
			eu = &url.URL{}
		}
		scheme := strings.ToLower(eu.Scheme)
		if eu.Hostname() == "" || scheme != "http" && scheme != "https" {
			c.errorf(p.value, p.path, "%q is not an instance uri like http://10.0.0.5:8080", s)
			continue
		}
		if i > 0 && scheme != tls {
			c.errorf(p.value, p.path, "not supported: instances of one service mixing http and https")
		}
		tls = scheme
		port := eu.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[scheme]
		}
		c.mapPath(fmt.Sprintf("%s.endpoints[%d]", native, len(eps.Content)), p.path)
		eps.Content = append(eps.Content, strNode(net.JoinHostPort(eu.Hostname(), port), p.value))
		// Spring's instances may carry metadata (zone, weight …) Sluice does not use.
		for _, k := range it.kids {
			if k != p {
				k.markAll()
				c.warnf(k.key, k.path, "ignored: instance metadata")
			}
		}
	}
	if tls == "https" {
		add(u.node, "tls", mapNode(inst.value))
	}
}

func (c *converter) upstreamsNode() *yaml.Node {
	if len(c.ups) == 0 {
		return nil
	}
	n := mapNode(c.root.value)
	for _, name := range c.upsOrder {
		add(n, name, c.ups[name].node)
	}
	return n
}

// definitions converts a list of predicates or filters, in either spelling.
// Names are kept as written: the gateway checks them against its registry.
func (c *converter) definitions(p *prop) *yaml.Node {
	p.markAll()
	if p.isNull() {
		return nil
	}
	if p.value.Kind != yaml.SequenceNode {
		c.errorf(p.value, p.path, "expected a list")
		return nil
	}
	seq := seqNode(p.value)
	var kept []string // the Spring path of each item of seq
	defer func() {
		if c.defAt == nil {
			c.defAt = map[*yaml.Node]string{}
		}
		for i, n := range seq.Content {
			if i < len(kept) {
				c.defAt[n] = kept[i]
			}
		}
	}()
	for _, it := range p.items {
		switch it.value.Kind {
		case yaml.ScalarNode:
			s, ok := c.str(it)
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(s, "=")
			if c.tokenRelay(name, it) {
				continue
			}
			c.checkDefinition(strings.TrimSpace(name), it)
			c.spel(s, it)
			seq.Content, kept = append(seq.Content, strNode(s, it.value)), append(kept, it.path)
		case yaml.MappingNode:
			if n := it.kid("name"); n != nil && n.isScalar() && c.tokenRelay(n.value.Value, it) {
				it.markAll()
				continue
			}
			m := mapNode(it.value)
			for _, k := range it.kids {
				switch canonical(k.name) {
				case "name":
					if s, ok := c.str(k); ok {
						c.checkDefinition(s, it)
						add(m, "name", strNode(s, k.value))
					}
				case "args":
					add(m, "args", c.copy(k))
				default:
					c.errorf(k.key, k.path, "unknown key %q (a predicate or filter has name and args)", k.name)
				}
			}
			seq.Content, kept = append(seq.Content, m), append(kept, it.path)
		default:
			c.errorf(it.value, it.path, "expected Name=args or {name, args}")
		}
	}
	return seq
}

// defPath is the Spring path of a converted predicate or filter, or def.
func (c *converter) defPath(n *yaml.Node, def string) string {
	if p, ok := c.defAt[n]; ok {
		return p
	}
	return def
}

func (c *converter) checkDefinition(name string, at *prop) {
	if why, ok := javaOnly[name]; ok {
		c.errorf(at.value, at.path, "not supported: %s: %s", name, why)
	}
}

// spel reports the SpEL expressions in v, the value at at. Spring's own
// principalNameKeyResolver bean is allowed: Sluice's rate limiter reads it as
// the user key resolver.
func (c *converter) spel(v string, at *prop) {
	if !strings.Contains(strings.ReplaceAll(v, "#{@principalNameKeyResolver}", ""), "#{") {
		return
	}
	c.errorf(at.value, at.path, "not supported: SpEL expressions (#{...}) name Java beans; for a key-resolver use "+
		"client_ip, header:NAME, path:VARIABLE or user[:HEADER] (see docs/spring-import.md)")
}

// beanRef returns the bean of a SpEL bean reference, #{@name}.
func beanRef(v string) (string, bool) {
	name, ok := strings.CutPrefix(strings.TrimSpace(v), "#{@")
	if name, ok2 := strings.CutSuffix(name, "}"); ok && ok2 && name != "" && !strings.ContainsAny(name, "{}()#@ .") {
		return name, true
	}
	return "", false
}

// keyResolver maps a key-resolver bean through sluice.key-resolvers.BEAN
// in the file (Spring ignores it): client_ip, header:NAME, path:VARIABLE,
// principal or user[:HEADER]. Spring's own principalNameKeyResolver is
// principal. An unmapped bean is one error.
func (c *converter) keyResolver(bean string, at *prop) (string, bool) {
	if bean == "principalNameKeyResolver" {
		return "principal", true
	}
	m := c.root.get("sluice.key-resolvers").kid(bean)
	if m == nil {
		c.errorf(at.value, at.path, "the key-resolver bean %q is Java code: say what it keys on in this file, "+
			"as sluice.key-resolvers.%s: client_ip | header:NAME | path:VARIABLE | principal (see docs/spring-import.md)", bean, bean)
		return "", false
	}
	return c.str(m)
}

// copy converts a free-form value (filter args, metadata) with its
// placeholders resolved, flagging SpEL expressions.
func (c *converter) copy(p *prop) *yaml.Node {
	p.used = true
	switch {
	case len(p.kids) > 0:
		m := mapNode(p.value)
		for _, k := range p.kids {
			if v := c.copy(k); v != nil {
				add(m, k.name, v)
			}
		}
		return m
	case p.value != nil && p.value.Kind == yaml.SequenceNode:
		s := seqNode(p.value)
		for _, it := range p.items {
			s.Content = append(s.Content, c.copy(it))
		}
		return s
	case p.value == nil || p.value.Kind != yaml.ScalarNode:
		return mapNode(p.key)
	}
	v, err := c.expand(p.value.Value, 0)
	if err != nil {
		c.errorf(p.value, p.path, "%v", err)
	}
	if bean, ok := beanRef(v); ok {
		switch canonical(p.name) {
		case "keyresolver":
			if v, ok = c.keyResolver(bean, p); !ok {
				return nil
			}
			return strNode(v, p.value)
		case "ratelimiter":
			c.errorf(p.value, p.path, "not supported: the RateLimiter bean %q runs Java code; Sluice's rate limiter is the Redis token bucket set by redis-rate-limiter.*", bean)
			return nil
		}
	}
	c.spel(v, p)
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: p.value.Tag, Style: p.value.Style, Value: v, Line: p.value.Line, Column: p.value.Column}
	if v != p.value.Value {
		n.Tag, n.Style = "", 0
	}
	return n
}

// metadata converts a route's metadata: response-timeout and connect-timeout
// (milliseconds) become settings; other keys stay metadata.
func (c *converter) metadata(p *prop, r *yaml.Node, native, lb string) {
	if len(p.kids) == 0 {
		p.used = true // empty
	}
	md := mapNode(p.value)
	for _, k := range p.kids {
		switch canonical(k.name) {
		case "responsetimeout":
			if d, ok := c.duration(k, time.Millisecond); ok {
				add(r, "response_timeout", strNode(formatDuration(max(d, 0)), k.value)) // -1: none
				c.mapPath(native+".response_timeout", k.path)
			}
		case "cors": // a Cors filter, made by route
		case "connecttimeout":
			d, ok := c.duration(k, time.Millisecond)
			switch u := c.ups[lb]; {
			case !ok:
			case u == nil:
				c.warnf(k.value, k.path, "ignored: Sluice sets connect_timeout per upstream; this route's uri has the default (or upstream_defaults, from httpclient.connect-timeout)")
			case u.connect != nil:
				c.warnf(k.value, k.path, "ignored: upstream %s already takes connect_timeout from %s", lb, u.connect.path)
			default:
				u.connect = k
				add(u.node, "connect_timeout", strNode(formatDuration(d), k.value))
				c.mapPath("upstreams."+lb+".connect_timeout", k.path)
			}
		default:
			add(md, k.name, c.copy(k))
		}
	}
	if len(md.Content) > 0 {
		add(r, "metadata", md)
		c.mapPath(native+".metadata", p.path)
	}
}

func (c *converter) filtersBlock(gw *prop) {
	p := gw.kid("default-filters")
	if p == nil {
		return
	}
	n := c.definitions(p)
	if n == nil {
		return
	}
	if c.defaultFilters == nil {
		c.defaultFilters = n
		c.mapPath("default_filters", p.path)
		for i, f := range n.Content {
			c.mapPath(fmt.Sprintf("default_filters[%d]", i), c.defPath(f, fmt.Sprintf("%s[%d]", p.path, i)))
		}
		return
	}
	c.errorf(p.value, p.path, "not supported: default-filters under both %s", strings.Join(gatewayRoots, " and "))
}

// corsFields are the properties of a Spring CorsConfiguration and their native names.
var corsFields = []struct{ spring, native, kind string }{
	{"allowed-origins", "allowed_origins", "list"},
	{"allowed-origin-patterns", "allowed_origin_patterns", "list"},
	{"allowed-methods", "allowed_methods", "list"},
	{"allowed-headers", "allowed_headers", "list"},
	{"exposed-headers", "exposed_headers", "list"},
	{"allow-credentials", "allow_credentials", "bool"},
	{"max-age", "max_age", "seconds"},
}

func (c *converter) corsBlock(gw *prop) {
	cc := gw.get("globalcors.cors-configurations")
	if cc == nil {
		return
	}
	if c.cors == nil {
		c.cors = mapNode(cc.key)
		c.mapPath("cors", cc.path)
	}
	for _, pat := range cc.kids {
		add(c.cors, pat.name, c.corsPolicy(pat, "cors."+pat.name))
		c.mapPath("cors."+pat.name, pat.path)
	}
}

// corsPolicy converts a Spring CorsConfiguration into the fields of a native
// CORS policy (the cors block's, and the Cors filter's arguments); native is
// the policy's path in the native config.
func (c *converter) corsPolicy(pat *prop, native string) *yaml.Node {
	policy := mapNode(pat.value)
	for _, f := range corsFields {
		p := pat.kid(f.spring)
		if p == nil {
			continue
		}
		var v *yaml.Node
		switch f.kind {
		case "list":
			if l, ok := c.list(p); ok {
				v = seqNode(p.value)
				v.Style = yaml.FlowStyle
				for _, s := range l {
					v.Content = append(v.Content, strNode(s, p.value))
				}
			}
		case "bool":
			if b, ok := c.boolean(p); ok {
				v = boolNode(b, p.value)
			}
		case "seconds":
			if d, ok := c.duration(p, time.Second); ok {
				v = strNode(formatDuration(d), p.value)
			}
		}
		if v != nil {
			add(policy, f.native, v)
			c.mapPath(native+"."+f.native, p.path)
		}
	}
	return policy
}

// httpClient converts the timeouts and the connection pool of Spring's HTTP
// client: connect-timeout (ms) and the pool go to upstream_defaults,
// response-timeout to server.response_timeout.
func (c *converter) httpClient(gw *prop, root string) {
	h := gw.kid("httpclient")
	if h == nil {
		return
	}
	if c.upstreamDefaults == nil {
		c.upstreamDefaults = mapNode(h.value)
		c.mapPath("upstream_defaults", h.path)
	}
	if p := c.setting(root + ".httpclient.connect-timeout"); p != nil {
		if d, ok := c.duration(p, time.Millisecond); ok {
			add(c.upstreamDefaults, "connect_timeout", strNode(formatDuration(d), p.value))
			c.mapPath("upstream_defaults.connect_timeout", p.path)
		}
	}
	if p := c.setting(root + ".httpclient.response-timeout"); p != nil {
		if d, ok := c.duration(p, time.Millisecond); ok {
			add(c.server, "response_timeout", strNode(formatDuration(d), p.value))
			c.mapPath("server.response_timeout", p.path)
		}
	}
	pool := h.kid("pool")
	if pool == nil {
		return
	}
	out := mapNode(pool.value)
	kind := "elastic" // Spring's default
	if p := pool.kid("type"); p != nil {
		if s, ok := c.str(p); ok {
			kind = strings.ToLower(s)
			if !slices.Contains([]string{"elastic", "fixed", "disabled"}, kind) {
				c.errorf(p.value, p.path, "%q is not ELASTIC, FIXED or DISABLED", s)
			}
		}
		if kind == "disabled" { // a new connection for every request
			add(out, "max_requests_per_connection", intNode(1, p.value))
			c.mapPath("upstream_defaults.pool.max_requests_per_connection", p.path)
		}
	}
	if p := pool.kid("max-connections"); p != nil {
		if n, ok := c.integer(p); ok {
			if kind == "fixed" {
				add(out, "max_connections", intNode(n, p.value))
				c.mapPath("upstream_defaults.pool.max_connections", p.path)
			} else {
				c.warnf(p.value, p.path, "ignored: max-connections applies to pool type FIXED only, in Spring as here")
			}
		}
	}
	for _, f := range []struct{ spring, native string }{
		{"max-idle-time", "max_idle_time"}, {"max-life-time", "max_lifetime"},
	} {
		if p := pool.kid(f.spring); p != nil {
			if d, ok := c.duration(p, time.Millisecond); ok {
				add(out, f.native, strNode(formatDuration(d), p.value))
				c.mapPath("upstream_defaults.pool."+f.native, p.path)
			}
		}
	}
	if len(out.Content) > 0 {
		add(c.upstreamDefaults, "pool", out)
	}
}

// redisBlock converts spring.data.redis (Spring Boot 3) or spring.redis
// (Spring Boot 2) into the native redis block.
func (c *converter) redisBlock() {
	var rp *prop
	var prefix string
	for _, name := range []string{"spring.data.redis", "spring.redis"} {
		if p := c.root.get(name); p != nil {
			if rp != nil {
				p.markAll()
				c.warnf(p.key, p.path, "ignored: %s is set too, and Spring Boot 3 reads it instead", rp.path)
				continue
			}
			rp, prefix = p, name
		}
	}
	if rp == nil {
		return
	}
	c.redis = mapNode(rp.key)
	c.mapPath("redis", rp.path)
	host, port, at, atPath := "localhost", "6379", rp.value, rp.path
	var user, pass, db, tls *yaml.Node
	if p := c.setting(prefix + ".url"); p != nil {
		if s, ok := c.str(p); ok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" {
				c.errorf(p.value, p.path, "%q is not a URL like redis://user:password@host:6379/0", s)
			} else {
				host, at, atPath = u.Hostname(), p.value, p.path
				if u.Port() != "" {
					port = u.Port()
				}
				if n := u.User.Username(); n != "" {
					user = strNode(n, p.value)
				}
				if pw, ok := u.User.Password(); ok {
					pass = strNode(pw, p.value)
				}
				if d := strings.Trim(u.Path, "/"); d != "" {
					if n, err := strconv.Atoi(d); err == nil {
						db = intNode(int64(n), p.value)
					}
				}
				if u.Scheme == "rediss" {
					tls = boolNode(true, p.value)
				}
			}
		}
	}
	if p := c.setting(prefix + ".host"); p != nil {
		if s, ok := c.str(p); ok {
			host, at, atPath = s, p.value, p.path
		}
	}
	if p := c.setting(prefix + ".port"); p != nil {
		if n, ok := c.integer(p); ok {
			port = strconv.FormatInt(n, 10)
		}
	}
	if topology := c.redisTopology(prefix); topology == "" {
		add(c.redis, "address", strNode(net.JoinHostPort(host, port), at))
		c.mapPath("redis.address", atPath)
	} else if atPath != rp.path {
		c.warnf(at, atPath, "ignored: %s.%s is set, and Spring connects through it instead", prefix, topology)
	}
	if p := c.setting(prefix + ".username"); p != nil {
		if s, ok := c.str(p); ok {
			user = strNode(s, p.value)
		}
	}
	if p := c.setting(prefix + ".password"); p != nil {
		if s, ok := c.str(p); ok {
			pass = strNode(s, p.value)
		}
	}
	if p := c.setting(prefix + ".database"); p != nil {
		if n, ok := c.integer(p); ok {
			db = intNode(n, p.value)
		}
	}
	if p := rp.kid("ssl"); p != nil {
		if e := p.kid("enabled"); e != nil { // Spring Boot 3
			if b, ok := c.boolean(e); ok {
				tls = boolNode(b, e.value)
			}
		} else if p.isScalar() { // Spring Boot 2: ssl: true
			if b, ok := c.boolean(p); ok {
				tls = boolNode(b, p.value)
			}
		}
	}
	for _, f := range []struct {
		key string
		n   *yaml.Node
	}{{"username", user}, {"password", pass}, {"db", db}} {
		if f.n != nil {
			add(c.redis, f.key, f.n)
		}
	}
	if tls != nil {
		t := mapNode(tls)
		add(t, "enabled", tls)
		add(c.redis, "tls", t)
	}
	for _, client := range []string{"lettuce", "jedis"} {
		if p := rp.get(client + ".pool.max-active"); p != nil {
			if n, ok := c.integer(p); ok {
				add(c.redis, "pool_size", intNode(n, p.value))
				c.mapPath("redis.pool_size", p.path)
			}
		}
	}
	if p := c.setting(prefix + ".connect-timeout"); p != nil {
		if d, ok := c.duration(p, time.Millisecond); ok {
			add(c.redis, "dial_timeout", strNode(formatDuration(d), p.value))
			c.mapPath("redis.dial_timeout", p.path)
		}
	}
	if p := c.setting(prefix + ".timeout"); p != nil {
		if d, ok := c.duration(p, time.Millisecond); ok {
			add(c.redis, "read_timeout", strNode(formatDuration(d), p.value))
			add(c.redis, "write_timeout", strNode(formatDuration(d), p.value))
			c.mapPath("redis.read_timeout", p.path)
			c.mapPath("redis.write_timeout", p.path)
		}
	}
}

// redisTopology converts PREFIX.sentinel.{master,nodes,username,password}
// or, without them, PREFIX.cluster.{nodes,max-redirects} (Spring's order of
// preference) into the redis block's sentinel or cluster, and returns which
// ("" for neither).
func (c *converter) redisTopology(prefix string) string {
	cluster := c.root.get(prefix + ".cluster")
	has := func(name string) bool {
		return c.setting(prefix+"."+name+".nodes") != nil || c.setting(prefix+"."+name+".master") != nil
	}
	switch {
	case has("sentinel"):
		if cluster != nil {
			cluster.markAll()
			c.warnf(cluster.key, cluster.path, "ignored: %s.sentinel is set, and Spring connects through it instead", prefix)
		}
		block := mapNode(c.redis)
		c.redisNodes(block, prefix+".sentinel.nodes", "redis.sentinel.nodes")
		for _, k := range []string{"master", "username", "password"} {
			if p := c.setting(prefix + ".sentinel." + k); p != nil {
				if v, ok := c.str(p); ok {
					add(block, k, strNode(v, p.value))
					c.mapPath("redis.sentinel."+k, p.path)
				}
			}
		}
		add(c.redis, "sentinel", block)
		return "sentinel"
	case has("cluster"):
		block := mapNode(c.redis)
		c.redisNodes(block, prefix+".cluster.nodes", "redis.cluster.nodes")
		if p := c.setting(prefix + ".cluster.max-redirects"); p != nil {
			if n, ok := c.integer(p); ok {
				add(block, "max_redirects", intNode(n, p.value))
				c.mapPath("redis.cluster.max_redirects", p.path)
			}
		}
		add(c.redis, "cluster", block)
		return "cluster"
	}
	return ""
}

// redisNodes adds the host:port list at path (a YAML list or a
// comma-separated string, as Spring takes it) to block as nodes.
func (c *converter) redisNodes(block *yaml.Node, path, native string) {
	p := c.setting(path)
	if p == nil {
		return
	}
	vs, ok := c.list(p)
	if !ok {
		return
	}
	seq := seqNode(p.value)
	for _, v := range vs {
		seq.Content = append(seq.Content, strNode(v, p.value))
	}
	add(block, "nodes", seq)
	c.mapPath(native, p.path)
}

// extraDocument handles a document after the first: one for a profile that
// is not active is ignored, as in Spring; one that holds only properties
// the import does not read (logging, management …) is listed as warnings;
// any other would change the first.
func (c *converter) extraDocument(root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		c.errorf(root, "", "not supported: a second document that is not a mapping")
		return
	}
	tree := newTree(root, func(n *yaml.Node, path, format string, a ...any) {})
	on := tree.get("spring.config.activate.on-profile")
	if on == nil {
		on = tree.get("spring.profiles")
	}
	if on != nil && on.isScalar() {
		active, from := c.activeProfiles()
		if !slices.ContainsFunc(active, func(p string) bool { return slices.Contains(splitList(on.value.Value), p) }) {
			c.warnf(root, "", "ignored: a document for profile %q, which is not active (%s)", on.value.Value, from)
			return
		}
		on.markAll()
	}
	var leaves []*prop
	tree.unused(func(p *prop) { leaves = append(leaves, p) })
	for _, p := range leaves {
		if read(canonicalPath(p)) {
			c.errorf(root, "", "not supported: a second document, which Spring applies over the first; merge it into the first")
			return
		}
	}
	for _, p := range leaves {
		c.leftover(p)
	}
}

// applyProfiles merges the later documents of the active profiles into the
// first, in file order, as Spring Boot applies them, and returns the other
// documents.
func (c *converter) applyProfiles(root *yaml.Node, extra []*yaml.Node) (*yaml.Node, []*yaml.Node) {
	noop := func(*yaml.Node, string, string, ...any) {}
	c.root = newTree(root, noop)
	var rest []*yaml.Node
	for _, d := range extra {
		if d.Kind != yaml.MappingNode {
			rest = append(rest, d)
			continue
		}
		tree := newTree(d, noop)
		on := tree.get("spring.config.activate.on-profile")
		if on == nil {
			on = tree.get("spring.profiles")
		}
		active, _ := c.activeProfiles()
		if on == nil || !on.isScalar() || !slices.ContainsFunc(active, func(p string) bool { return slices.Contains(splitList(on.value.Value), p) }) {
			rest = append(rest, d)
			continue
		}
		root = mergeDocument(root, d)
		c.root = newTree(root, noop)
	}
	return root, rest
}

// activeProfiles are the profiles Spring activates: SPRING_PROFILES_ACTIVE,
// else spring.profiles.active in the first document; from says which.
func (c *converter) activeProfiles() (profiles []string, from string) {
	if v, ok := c.env("SPRING_PROFILES_ACTIVE"); ok {
		return splitList(v), "SPRING_PROFILES_ACTIVE"
	}
	if p := c.root.get("spring.profiles.active"); p != nil {
		if l, ok := c.list(p); ok {
			return l, p.path
		}
	}
	return nil, "no active profile: SPRING_PROFILES_ACTIVE and spring.profiles.active are not set"
}

// read reports whether the import reads the property at the canonical
// path cp, so that setting it in a later document would change the result.
func read(cp string) bool {
	for _, pre := range []string{"server.", "management.server.", "spring.cloud.", "spring.data.redis.", "spring.redis.",
		"spring.security.", "eureka.client.", "spring.profiles.", "spring.config.", "spring.main.", "sluice."} {
		if strings.HasPrefix(cp+".", pre) {
			return true
		}
	}
	return false
}

// setting returns the single-valued property at path (kebab-case, from the
// root of the file), or nil. As in Spring, the property's environment
// variable (server.port: SERVER_PORT; connect-timeout: CONNECTTIMEOUT or
// CONNECT_TIMEOUT) wins over the file; the prop then holds its value, placed
// where the file sets the property or its parent, with the variable named in
// its path.
func (c *converter) setting(path string) *prop {
	p := c.root.get(path)
	upper := strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
	for _, name := range []string{strings.ReplaceAll(upper, "-", ""), strings.ReplaceAll(upper, "-", "_")} {
		v, ok := c.env(name)
		if !ok {
			continue
		}
		at := c.root.value
		if p != nil {
			p.markAll()
			at = p.value
		} else if i := strings.LastIndexByte(path, '.'); i > 0 && c.root.get(path[:i]) != nil {
			at = c.root.get(path[:i]).key
		}
		return &prop{name: path[strings.LastIndexByte(path, '.')+1:], path: path + " ($" + name + ")", key: at,
			value: &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: at.Line, Column: at.Column}}
	}
	return p
}

// leftover lists a property that nothing converted.
func (c *converter) leftover(p *prop) {
	at := p.key
	if at == nil {
		at = p.value
	}
	cp := canonicalPath(p)
	if rest, ok := strings.CutPrefix(cp, "spring.cloud.gateway.server.webflux."); ok {
		cp = "spring.cloud.gateway." + rest // the same properties under the 4.1 prefix
	}
	for _, h := range harmless {
		if strings.HasPrefix(cp, h.prefix) {
			c.warnf(at, p.path, "ignored: %s", h.why)
			return
		}
	}
	for _, b := range blocking {
		if strings.HasPrefix(cp, b.prefix) {
			c.errorf(at, p.path, "not supported: %s", b.why)
			return
		}
	}
	c.warnf(at, p.path, "ignored: not gateway configuration")
}

// harmless are properties, under a blocking prefix (the WebFlux prefix
// spring.cloud.gateway.server.webflux written as spring.cloud.gateway), that do not change how
// requests are handled. Paths are canonical (see canonical).
var harmless = []struct{ prefix, why string }{
	{"spring.cloud.gateway.metrics.", "Sluice always serves Prometheus metrics on the admin port"},
	{"spring.cloud.gateway.observability.", "tracing and observation are configured separately in Sluice"},
	{"spring.cloud.gateway.httpclient.wiretap", "a debugging aid of Reactor Netty"},
	{"spring.cloud.gateway.httpclient.pool.name", "a name for Reactor Netty's metrics"},
	{"spring.cloud.gateway.httpclient.pool.metrics", "Sluice always has pool metrics"},
	{"spring.cloud.gateway.httpclient.pool.evictioninterval", "Sluice sweeps idle connections every 100 ms"},
	{"spring.cloud.gateway.globalcors.addtosimpleurlhandlermapping", "Sluice applies CORS to every request"},
	{"spring.cloud.gateway.enabled", "the gateway is enabled"},
	{"spring.cloud.gateway.actuator.", "Sluice's admin port has its own routes view"},
	{"spring.data.redis.clienttype", "Sluice has one Redis client"},
	{"spring.data.redis.lettuce.", "client tuning; only pool.max-active is imported"},
	{"spring.data.redis.jedis.", "client tuning; only pool.max-active is imported"},
	{"spring.redis.clienttype", "Sluice has one Redis client"},
	{"spring.redis.lettuce.", "client tuning; only pool.max-active is imported"},
	{"spring.redis.jedis.", "client tuning; only pool.max-active is imported"},
	{"spring.cloud.discovery.enabled", "discovery is replaced by upstream endpoints"},
	{"spring.cloud.nacos.", "the gateway's own registration or Nacos config; Sluice reads the instances of lb:// services only"},
	{"eureka.", "the gateway's own registration; Sluice reads the instances of lb:// services only"},
	{"spring.cloud.consul.", "the gateway's own registration; Sluice reads the instances of lb:// services only"},
	{"spring.cloud.kubernetes.", "Sluice reads the Services of lb:// names only"},
}

// blocking are the prefixes under which an unconverted property changes how
// requests are routed, filtered or secured.
var blocking = []struct{ prefix, why string }{
	{"spring.cloud.gateway.discovery.", "routes created from service discovery; define the routes explicitly"},
	{"spring.cloud.gateway.httpclient.ssl.", "TLS settings of Spring's HTTP client; set tls on the upstreams of a native config"},
	{"spring.cloud.gateway.httpclient.proxy.", "an outbound HTTP proxy"},
	{"spring.cloud.gateway.", "Sluice has no equivalent of this Spring Cloud Gateway property"},
	{"spring.security.", "Spring Security is not imported; use the TokenAuth or JWT filters"},
	{"server.ssl.", "TLS termination from a Java keystore; set server.tls in a native config"},
	{"server.compression.", "Sluice's compression has enabled, min-response-size and mime-types only"},
	{"spring.data.redis.", "Sluice does not import this Redis setting"},
	{"spring.redis.", "Sluice does not import this Redis setting"},
	{"spring.cloud.discovery.", "service discovery; list the instances as spring.cloud.discovery.client.simple.instances or as upstream endpoints"},
}

// canonicalPath is p's path in canonical form, with list indices as [].
func canonicalPath(p *prop) string {
	var b strings.Builder
	for i, seg := range strings.Split(p.path, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		name, _, _ := strings.Cut(seg, "[")
		b.WriteString(canonical(name))
		if strings.Contains(seg, "[") {
			b.WriteString("[]")
		}
	}
	return b.String()
}

// str returns the value of the scalar p, placeholders resolved.
func (c *converter) str(p *prop) (string, bool) {
	p.markAll()
	if !p.isScalar() {
		c.errorf(p.value, p.path, "expected a single value")
		return "", false
	}
	if p.isNull() {
		return "", true // password: is an empty password, in Spring as here
	}
	v, err := c.expand(p.value.Value, 0)
	if err != nil {
		c.errorf(p.value, p.path, "%v", err)
		return "", false
	}
	return v, true
}

func (c *converter) integer(p *prop) (int64, bool) {
	s, ok := c.str(p)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		c.errorf(p.value, p.path, "%q is not an integer", s)
		return 0, false
	}
	return n, true
}

func (c *converter) boolean(p *prop) (bool, bool) {
	s, ok := c.str(p)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(s)))
	if err != nil {
		c.errorf(p.value, p.path, "%q is not true or false", s)
		return false, false
	}
	return b, true
}

// duration reads a java.time.Duration property; a bare number is in unit.
func (c *converter) duration(p *prop, unit time.Duration) (time.Duration, bool) {
	s, ok := c.str(p)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(s, unit)
	if err != nil {
		c.errorf(p.value, p.path, "%v", err)
		return 0, false
	}
	return d, true
}

// list reads a list property: a YAML list or a comma-separated string.
func (c *converter) list(p *prop) ([]string, bool) {
	if p.isScalar() {
		s, ok := c.str(p)
		return splitList(s), ok
	}
	p.markAll()
	if p.value == nil || p.value.Kind != yaml.SequenceNode {
		c.errorf(p.value, p.path, "expected a list")
		return nil, false
	}
	var out []string
	for _, it := range p.items {
		if s, ok := c.str(it); ok {
			out = append(out, s)
		}
	}
	return out, true
}

func mapNode(at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column}
}

func seqNode(at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: at.Line, Column: at.Column}
}

func strNode(s string, at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Line: at.Line, Column: at.Column}
}

func intNode(n int64, at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10), Line: at.Line, Column: at.Column}
}

func boolNode(b bool, at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b), Line: at.Line, Column: at.Column}
}

// add appends key: v to the mapping m; the key is placed where v is.
func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key, v), v)
}
