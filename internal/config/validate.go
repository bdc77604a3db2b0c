package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// validate checks what the decoder cannot see in one value, fills in the
// defaults that depend on other values, and resolves route URIs.
func (d *decoder) validate(c *Config) {
	if _, _, err := splitHostPort(c.Server.Listen, true); err != nil {
		d.invalid("server.listen", "%q is not a valid address: %v", c.Server.Listen, err)
	}
	d.positive("server.max_header_bytes", c.Server.MaxHeaderBytes)
	d.atLeast("server.max_connections", c.Server.MaxConnections, 0)
	if ka := c.Server.KeepAlive; ka.Enabled {
		d.positive("server.keepalive.idle", int64(ka.Idle))
		d.positive("server.keepalive.interval", int64(ka.Interval))
		d.positive("server.keepalive.count", int64(ka.Count))
	}
	if t := c.Server.TLS; t != nil {
		if t.off {
			c.Server.TLS = nil
		} else {
			d.checkServerTLS(t, "server.tls")
		}
	}
	d.checkListeners(&c.Server)
	for i, h := range c.Server.UntrustedHeaders {
		if !validHeaderName(h) {
			d.invalid(fmt.Sprintf("server.untrusted_headers[%d]", i), "%q is not a header name", h)
		}
	}
	switch c.Admin.Listen {
	case "", "off":
		c.Admin.Listen = ""
	default:
		if _, _, err := splitHostPort(c.Admin.Listen, true); err != nil {
			d.invalid("admin.listen", "%q is not a valid address: %v (or \"off\")", c.Admin.Listen, err)
		}
	}
	if c.Admin.TokenFile != "" && c.Admin.TokenEnv != "" {
		d.invalid("admin.token_env", "set token_file or token_env, not both")
	}
	d.checkFiles("admin", map[string]string{"token_file": c.Admin.TokenFile})
	if c.Admin.Listen != "" && !c.Admin.HasToken() && !loopback(c.Admin.Listen) {
		c.Warnings = append(c.Warnings, newError(d.file, d.pos("admin.listen"), "admin.listen",
			"%q is reachable beyond this host and the admin port has no token (admin.token_file or admin.token_env): anyone who reaches it can drain or reload the gateway", c.Admin.Listen))
	}
	d.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	d.oneOf("log.format", c.Log.Format, "auto", "json", "text")
	d.checkObservability(c)
	d.checkRedis(c.Redis)
	d.checkReload(c.Reload)

	d.checkUpstreamDefaults(&c.UpstreamDefaults)
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		u.Name = name
		d.applyUpstreamDefaults(&c.UpstreamDefaults, u)
		d.checkUpstream(u)
	}
	ids := map[string]*Route{}
	for _, r := range c.Routes {
		if _, ok := d.at[r.Path+".response_timeout"]; !ok {
			r.ResponseTimeout = c.Server.ResponseTimeout
		}
		if _, ok := d.at[r.Path+".max_body_size"]; !ok {
			r.MaxBodySize = c.Server.MaxBodySize
		}
		switch first := ids[r.ID]; {
		case r.ID == "":
			d.missing(r.Pos, r.Path, "id", "must not be empty")
		case first != nil:
			d.invalid(r.Path+".id", "duplicate route id %q (first at line %d)", r.ID, d.pos(first.Path+".id").Line)
		default:
			ids[r.ID] = r
		}
		d.resolveURI(c, r)
		d.checkRetry(&r.Retry, r.Path+".retry")
		d.checkConcurrency(r)
	}
}

// resolveURI sets r.Upstream and r.Scheme, adding an implicit upstream for a direct URI.
func (d *decoder) resolveURI(c *Config, r *Route) {
	if r.URI == "" {
		d.missing(r.Pos, r.Path, "uri", "must not be empty")
		return
	}
	path := r.Path + ".uri"
	u, err := url.Parse(r.URI)
	if err != nil || u.Opaque != "" || u.Host == "" {
		d.invalid(path, "%q is not a URI like lb://backend or http://127.0.0.1:9001", r.URI)
		return
	}
	var problem string
	switch {
	case u.User != nil:
		problem = "user info is not allowed"
	case u.RawQuery != "" || u.ForceQuery:
		problem = "a query is not allowed"
	case u.Fragment != "":
		problem = "a fragment is not allowed"
	case u.Path != "" && u.Path != "/":
		problem = "a path is not allowed (use PrefixPath or SetPath)"
	}
	if problem != "" {
		d.invalid(path, "%q: %s", r.URI, problem)
		return
	}

	var scheme string
	switch u.Scheme {
	case "lb":
		up := c.Upstreams[u.Host]
		if up == nil || up.Implicit {
			var named []string
			for name, up := range c.Upstreams {
				if !up.Implicit {
					named = append(named, name)
				}
			}
			list := "none"
			if len(named) > 0 {
				slices.Sort(named)
				list = strings.Join(named, ", ")
			}
			d.invalid(path, "upstream %q is not defined (defined: %s)", u.Host, list)
			return
		}
		r.Upstream, r.Scheme = u.Host, "http"
		if up.TLS != nil {
			r.Scheme = "https"
		}
		return
	case "http", "ws":
		scheme = "http"
	case "https", "wss":
		scheme = "https"
	default:
		d.invalid(path, "scheme %q is not supported (use lb, http, https, ws or wss)", u.Scheme)
		return
	}

	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	if _, _, err := splitHostPort(addr, false); err != nil {
		d.invalid(path, "%q: %v", r.URI, err)
		return
	}
	r.Upstream, r.Scheme = scheme+"://"+addr, scheme
	if c.Upstreams[r.Upstream] != nil {
		return
	}
	up := &Upstream{
		Name:      r.Upstream,
		Endpoints: []Endpoint{{Address: addr, Weight: 1}},
		Implicit:  true,
		Pos:       d.pos(path),
		Path:      path,
	}
	up.setDefaults()
	d.applyUpstreamDefaults(&c.UpstreamDefaults, up)
	if scheme == "https" {
		up.TLS = &TLS{}
	}
	if c.Upstreams == nil {
		c.Upstreams = map[string]*Upstream{}
	}
	c.Upstreams[r.Upstream] = up
}

func (d *decoder) checkRetry(r *Retry, path string) {
	d.between(path+".attempts", r.Attempts, 1, 10)
	if r.Backoff.Base > r.Backoff.Max {
		d.invalid(path+".backoff", "base (%s) must not exceed max (%s)", r.Backoff.Base, r.Backoff.Max)
	}
	for i, s := range r.Statuses {
		d.between(fmt.Sprintf("%s.statuses[%d]", path, i), s, 100, 599)
	}
	d.between(path+".budget_percent", r.BudgetPercent, 0, 100)
	d.atLeast(path+".min_retries", r.MinRetries, 0)
	if r.BufferLimit < 0 || r.BufferLimit > 64<<20 {
		d.invalid(path+".buffer_limit", "must be between 0 and 64MiB, got %d", r.BufferLimit)
	}
}

// splitHostPort splits a host:port address. The host is an IP address or
// a hostname; it may be empty only in a listen address, where the port may be 0.
func splitHostPort(addr string, listen bool) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", "", errors.New(ae.Err)
		}
		return "", "", err
	}
	lo := 1
	if listen {
		lo = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lo || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from %d to 65535", port, lo)
	}
	switch {
	case host == "" && listen:
	case host == "":
		return "", "", errors.New("missing host")
	case !isHostname(host):
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", fmt.Errorf("host %q is not an IP address or hostname", host)
		}
	}
	return host, port, nil
}

// isHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_'.
func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// pos returns the position of the value at path or, if it was not written,
// of the nearest enclosing value that was.
func (d *decoder) pos(path string) Pos {
	for {
		if p, ok := d.at[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			if p, ok := d.at[""]; ok {
				return p
			}
			return Pos{Line: 1, Col: 1}
		}
		path = path[:i]
	}
}

// field returns path.key if that value was written, else path; a problem
// with a key that has a shorthand form (an endpoint's address) is reported
// where it was written.
func (d *decoder) field(path, key string) string {
	if _, ok := d.at[path+"."+key]; ok {
		return path + "." + key
	}
	return path
}

// invalid reports a problem with the value at path.
func (d *decoder) invalid(path, format string, a ...any) {
	if d.failed[path] {
		return
	}
	d.errorf(d.pos(path), path, format, a...)
}

// missing reports that key of the mapping at parent (at p) is absent or,
// if written, that it is empty.
func (d *decoder) missing(p Pos, parent, key, empty string) {
	if _, ok := d.at[parent+"."+key]; ok {
		d.invalid(parent+"."+key, "%s", empty)
		return
	}
	d.errorf(p, parent, "missing required key %q", key)
}

func (d *decoder) positive(path string, v int64) bool {
	if v <= 0 {
		d.invalid(path, "must be greater than 0")
		return false
	}
	return true
}

func (d *decoder) atLeast(path string, v, lo int) {
	if v < lo {
		d.invalid(path, "must be at least %d, got %d", lo, v)
	}
}

func (d *decoder) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		d.invalid(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (d *decoder) oneOf(path, v string, allowed ...string) {
	if slices.Contains(allowed, v) {
		return
	}
	if s := Suggest(v, allowed); s != "" {
		d.invalid(path, "%q is not one of %s (did you mean %s?)", v, strings.Join(allowed, ", "), s)
		return
	}
	d.invalid(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

// validHeaderName: a field name is a non-empty token (RFC 9110 §5.1).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// loopback reports whether the address listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
