package scg

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The discovery locator (spring.cloud.gateway.discovery.locator) makes a
// route for every service the registry lists, as Spring Cloud Gateway's
// DiscoveryClientRouteDefinitionLocator does. The import writes those
// routes for the services it is given (Convert's services), before the
// file's own routes, and names the registry to list in
// Result.ServiceList; the gateway follows the list and imports the file
// again whenever it changes.

// locatorSpec is an enabled discovery.locator.
type locatorSpec struct {
	enabled    *prop // enabled: true, for positions
	lower      bool
	include    *prop // include-expression; nil: every service
	url        *prop // url-expression; nil: 'lb://'+serviceId
	prefix     string
	predicates []defTemplate
	filters    []defTemplate
}

// defTemplate is a predicate or filter whose argument values are SpEL.
type defTemplate struct {
	name     string
	keys     []string // argument names; _genkey_N for the shortcut form
	exprs    []string
	shortcut bool
	at       *prop
}

// Spring's defaults (GatewayDiscoveryClientAutoConfiguration.initPredicates, initFilters).
var (
	defaultLocatorPredicates = []defTemplate{{name: "Path", keys: []string{"pattern"}, exprs: []string{"'/'+serviceId+'/**'"}}}
	defaultLocatorFilters    = []defTemplate{{name: "RewritePath", keys: []string{"regexp", "replacement"},
		exprs: []string{"'/' + serviceId + '/?(?<remaining>.*)'", "'/${remaining}'"}}}
)

// locatorBlock reads discovery.locator; its settings are ignored while it
// is off (its default).
func (c *converter) locatorBlock(gw *prop) {
	loc := gw.get("discovery.locator")
	if loc == nil {
		return
	}
	en := loc.kid("enabled")
	on := false
	if en != nil {
		on, _ = c.boolean(en)
	}
	if !on {
		loc.unused(func(p *prop) {
			p.used = true
			c.warnf(p.value, p.path, "ignored: discovery routes are off")
		})
		return
	}
	if c.loc != nil {
		loc.markAll()
		c.errorf(en.value, en.path, "the discovery locator is also enabled at %s: enable it once", c.loc.enabled.path)
		return
	}
	spec := &locatorSpec{enabled: en, predicates: defaultLocatorPredicates, filters: defaultLocatorFilters}
	c.loc = spec
	if p := loc.kid("lower-case-service-id"); p != nil {
		spec.lower, _ = c.boolean(p)
	}
	if p := loc.kid("route-id-prefix"); p != nil {
		spec.prefix, _ = c.str(p)
	}
	if p := loc.kid("include-expression"); p != nil {
		if _, err := spelCondition(c.lenient(p), "service"); err != nil {
			c.errorf(p.value, p.path, "%v", err)
		} else {
			spec.include = p
		}
	}
	if p := loc.kid("url-expression"); p != nil {
		if _, err := spelString(c.lenient(p), "service"); err != nil {
			c.errorf(p.value, p.path, "%v", err)
		} else {
			spec.url = p
		}
	}
	if p := loc.kid("predicates"); p != nil {
		spec.predicates = c.defTemplates(p)
	}
	if p := loc.kid("filters"); p != nil {
		spec.filters = c.defTemplates(p)
	}
}

// lenient is the scalar p with the placeholders that have a value
// resolved and the others left as written, as Spring Boot binds them:
// '/${remaining}' keeps ${remaining} for RewritePath.
func (c *converter) lenient(p *prop) string {
	p.markAll()
	if !p.isScalar() {
		c.errorf(p.value, p.path, "expected a single value")
		return ""
	}
	s := p.value.Value
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		end := -1
		if i >= 0 {
			end = closing(s, i+2)
		}
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		v, err := c.expand(s[i:end+1], 0)
		if err != nil {
			v = s[i : end+1]
		}
		b.WriteString(v)
		s = s[end+1:]
	}
}

// defTemplates reads the locator's predicates or filters: Name=a,b or
// {name, args}, each argument a SpEL expression.
func (c *converter) defTemplates(p *prop) []defTemplate {
	p.markAll()
	if p.value.Kind != yaml.SequenceNode {
		c.errorf(p.value, p.path, "expected a list")
		return nil
	}
	var out []defTemplate
	for _, it := range p.items {
		t := defTemplate{at: it}
		switch {
		case it.isScalar():
			s := c.lenient(it)
			name, args, _ := strings.Cut(s, "=")
			t.name, t.shortcut = strings.TrimSpace(name), true
			for i, a := range strings.Split(args, ",") {
				t.keys, t.exprs = append(t.keys, fmt.Sprintf("_genkey_%d", i)), append(t.exprs, strings.TrimSpace(a))
			}
		case it.value.Kind == yaml.MappingNode:
			for _, k := range it.kids {
				switch canonical(k.name) {
				case "name":
					t.name, _ = c.str(k)
				case "args":
					for _, a := range k.kids {
						t.keys, t.exprs = append(t.keys, a.name), append(t.exprs, c.lenient(a))
					}
				default:
					c.errorf(k.key, k.path, "unknown key %q (a predicate or filter has name and args)", k.name)
				}
			}
		default:
			c.errorf(it.value, it.path, "expected Name=args or {name, args}")
			continue
		}
		c.checkDefinition(t.name, it)
		ok := true
		for _, e := range t.exprs {
			if _, err := spelString(e, "service"); err != nil {
				c.errorf(it.value, it.path, "%v", err)
				ok = false
			}
		}
		if ok {
			out = append(out, t)
		}
	}
	return out
}

// serviceNameRE is a service id usable in lb://NAME.
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$`)

// locatorRoutes writes a route for each service, before the file's own
// routes: Spring's GatewayDiscoveryClientAutoConfiguration runs before
// GatewayAutoConfiguration, so its route locator is listed (and its routes
// read) before the properties' one, and the stable sort by order keeps
// them first at equal order.
func (c *converter) locatorRoutes() {
	spec := c.loc
	if spec == nil {
		return
	}
	reg := c.registry()
	if reg == nil {
		c.errorf(spec.enabled.value, spec.enabled.path, "the discovery locator needs a service registry Sluice reads "+
			"(Nacos, Eureka, Consul, Kubernetes), and this file configures none")
		return
	}
	c.res.Locator = c.problem(spec.enabled.value, spec.enabled.path, "not supported in a native config: the discovery locator's "+
		"routes follow the registry's services while Sluice runs this Spring file (sluice run --config %s); a converted config holds only the routes written in the file", c.file)
	c.res.ServiceList = reg.discovery("locator", spec.enabled.value)
	c.res.ServiceListPath = reg.at.path
	prefix := spec.prefix
	if prefix == "" {
		prefix = "ReactiveCompositeDiscoveryClient_" // Spring's: the discovery client's class name
	}
	for _, svc := range c.services {
		if spec.include != nil {
			if in, err := spelCondition(c.lenient(spec.include), svc); err != nil || !in {
				continue
			}
		}
		if !serviceNameRE.MatchString(svc) {
			c.warnf(spec.enabled.value, spec.enabled.path, "ignored: the registry lists the service %q, whose name cannot be a route's lb:// host", svc)
			continue
		}
		c.locatorRoute(spec, prefix, svc)
	}
}

func (c *converter) locatorRoute(spec *locatorSpec, prefix, svc string) {
	at := spec.enabled
	evalID := svc
	if spec.lower {
		evalID = strings.ToLower(svc)
	}
	uri := "lb://" + svc
	if spec.url != nil {
		var err error
		if uri, err = spelString(c.lenient(spec.url), svc); err != nil {
			return // reported by locatorBlock
		}
	}
	if c.routes == nil {
		c.routes = seqNode(at.value)
	}
	native := fmt.Sprintf("routes[%d]", len(c.routes.Content))
	c.mapPath(native, at.path)
	r := mapNode(at.value)
	c.routes.Content = append(c.routes.Content, r)
	add(r, "id", strNode(prefix+svc, at.value))
	if u, err := url.Parse(uri); err == nil && u.Scheme == "lb" && u.Host != "" {
		c.lbUpstream(u.Host, &prop{name: "url-expression", path: at.path, key: at.key, value: at.value})
		uri = "lb://" + u.Host
	}
	add(r, "uri", strNode(uri, at.value))
	for _, list := range []struct {
		key  string
		defs []defTemplate
	}{{"predicates", spec.predicates}, {"filters", spec.filters}} {
		seq := seqNode(at.value)
		for _, t := range list.defs {
			seq.Content = append(seq.Content, t.node(evalID, at.value))
		}
		if len(seq.Content) > 0 {
			add(r, list.key, seq)
		}
	}
}

// node evaluates t for the service id.
func (t defTemplate) node(id string, at *yaml.Node) *yaml.Node {
	vals := make([]string, len(t.exprs))
	for i, e := range t.exprs {
		vals[i], _ = spelString(e, id) // checked by defTemplates
	}
	if t.shortcut {
		return strNode(t.name+"="+strings.Join(vals, ","), at)
	}
	m := mapNode(at)
	add(m, "name", strNode(t.name, at))
	args := mapNode(at)
	for i, k := range t.keys {
		add(args, k, strNode(vals[i], at))
	}
	add(m, "args", args)
	return m
}
