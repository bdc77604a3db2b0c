package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var upstreamNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (d *decoder) checkUpstream(u *Upstream) {
	p := u.Path
	if !upstreamNameRE.MatchString(u.Name) {
		d.errorf(u.Pos, p, "name %q may only hold letters, digits, '.', '_' and '-'", u.Name)
	}
	d.checkEndpointSource(u)
	first := map[string]string{} // address → path
	for i, e := range u.Endpoints {
		ep := fmt.Sprintf("%s.endpoints[%d]", p, i)
		addr := d.field(ep, "address")
		switch _, _, err := splitHostPort(e.Address, false); {
		case e.Address == "":
			d.errorf(d.pos(ep), ep, `missing required key "address"`)
		case err != nil:
			d.invalid(addr, "%q is not a valid address: %v", e.Address, err)
		case first[e.Address] != "":
			d.invalid(addr, "duplicate endpoint %q (first at line %d)", e.Address, d.pos(first[e.Address]).Line)
		default:
			first[e.Address] = addr
		}
		if e.Weight < 1 || e.Weight > 1000 {
			d.invalid(ep+".weight", "must be between 1 and 1000, got %d", e.Weight)
		}
	}
	d.oneOf(p+".protocol", u.Protocol, "http1", "h2", "h2c")
	d.oneOf(p+".balancer", u.Balancer, "round_robin", "least_request", "random", "consistent_hash")
	switch {
	case u.Balancer == "consistent_hash" && u.HashOn.Source == "":
		d.invalid(p+".balancer", "consistent_hash needs hash_on (header:NAME, cookie:NAME or client_ip)")
	case u.Balancer != "consistent_hash" && u.HashOn.Source != "":
		d.invalid(p+".hash_on", "is only used with balancer consistent_hash")
	}
	d.positive(p+".connect_timeout", int64(u.ConnectTimeout))
	d.positive(p+".pool.max_idle_time", int64(u.Pool.MaxIdleTime))
	d.atLeast(p+".pool.max_connections", u.Pool.MaxConnections, 0)
	d.atLeast(p+".pool.max_requests_per_connection", u.Pool.MaxRequestsPerConnection, 0)
	if u.TLS != nil {
		d.checkTLS(u.TLS, p+".tls")
	}
	if h := u.HealthCheck; h != nil {
		hp := p + ".health_check"
		switch {
		case h.Path == "":
			d.missing(d.pos(hp), hp, "path", "must not be empty")
		case !strings.HasPrefix(h.Path, "/"):
			d.invalid(hp+".path", "%q must start with /", h.Path)
		}
		d.positive(hp+".interval", int64(h.Interval))
		if d.positive(hp+".timeout", int64(h.Timeout)) && h.Timeout >= h.Interval {
			d.invalid(hp+".timeout", "must be less than interval (%s)", h.Interval)
		}
		d.atLeast(hp+".healthy_threshold", h.HealthyThreshold, 1)
		d.atLeast(hp+".unhealthy_threshold", h.UnhealthyThreshold, 1)
		if len(h.ExpectedStatuses) == 0 {
			d.invalid(hp+".expected_statuses", "must not be empty")
		}
	}
	od := p + ".outlier_detection"
	d.atLeast(od+".consecutive_failures", u.OutlierDetection.ConsecutiveFailures, 0)
	if u.OutlierDetection.ConsecutiveFailures > 0 {
		d.positive(od+".base_ejection_time", int64(u.OutlierDetection.BaseEjectionTime))
	}
	d.between(od+".max_ejection_percent", u.OutlierDetection.MaxEjectionPercent, 0, 100)
}

// upstreamDefaultFields are the fields of upstream_defaults, by their path
// under it, with how to copy each into an upstream.
var upstreamDefaultFields = []struct {
	path string
	copy func(dst *Upstream, src *UpstreamDefaults)
}{
	{"connect_timeout", func(u *Upstream, s *UpstreamDefaults) { u.ConnectTimeout = s.ConnectTimeout }},
	{"pool.max_idle_time", func(u *Upstream, s *UpstreamDefaults) { u.Pool.MaxIdleTime = s.Pool.MaxIdleTime }},
	{"pool.max_lifetime", func(u *Upstream, s *UpstreamDefaults) { u.Pool.MaxLifetime = s.Pool.MaxLifetime }},
	{"pool.max_connections", func(u *Upstream, s *UpstreamDefaults) { u.Pool.MaxConnections = s.Pool.MaxConnections }},
	{"pool.max_requests_per_connection", func(u *Upstream, s *UpstreamDefaults) {
		u.Pool.MaxRequestsPerConnection = s.Pool.MaxRequestsPerConnection
	}},
}

// applyUpstreamDefaults copies into u each field written under
// upstream_defaults that u does not write itself (an implicit upstream
// writes none).
func (d *decoder) applyUpstreamDefaults(defs *UpstreamDefaults, u *Upstream) {
	for _, f := range upstreamDefaultFields {
		if _, ok := d.at["upstream_defaults."+f.path]; !ok {
			continue
		}
		if _, ok := d.at[u.Path+"."+f.path]; ok && !u.Implicit {
			continue
		}
		f.copy(u, defs)
	}
}

// checkUpstreamDefaults checks the fields of upstream_defaults that were written.
func (d *decoder) checkUpstreamDefaults(u *UpstreamDefaults) {
	written := func(p string) bool { _, ok := d.at[p]; return ok }
	if written("upstream_defaults.connect_timeout") {
		d.positive("upstream_defaults.connect_timeout", int64(u.ConnectTimeout))
	}
	if written("upstream_defaults.pool.max_idle_time") {
		d.positive("upstream_defaults.pool.max_idle_time", int64(u.Pool.MaxIdleTime))
	}
	d.atLeast("upstream_defaults.pool.max_connections", u.Pool.MaxConnections, 0)
	d.atLeast("upstream_defaults.pool.max_requests_per_connection", u.Pool.MaxRequestsPerConnection, 0)
}

func (d *decoder) checkTLS(t *TLS, path string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		d.invalid(path, "cert_file and key_file must be set together")
	}
	d.checkFiles(path, map[string]string{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile})
}

// checkFiles reports each named file under path that is set but cannot be read as a file.
func (d *decoder) checkFiles(path string, files map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(files)) {
		file := files[key]
		if file == "" {
			continue
		}
		switch fi, err := os.Stat(file); {
		case errors.Is(err, fs.ErrNotExist):
			d.invalid(path+"."+key, "file %q does not exist", file)
		case err != nil:
			d.invalid(path+"."+key, "%v", err)
		case fi.IsDir():
			d.invalid(path+"."+key, "%q is a directory", file)
		}
	}
}

// unmarshalNode decodes "ADDRESS" or {address: ADDRESS, weight: N}.
func (e *Endpoint) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		e.Address = n.Value
		return
	}
	d.structure(n, reflect.ValueOf(e).Elem(), path)
}

// unmarshalNode decodes "header:NAME", "cookie:NAME" or "client_ip".
func (k *HashKey) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	source, name, _ := strings.Cut(s, ":")
	switch {
	case s == "client_ip":
		*k = HashKey{Source: s}
	case (source == "header" || source == "cookie") && isToken(name):
		*k = HashKey{Source: source, Name: name}
	default:
		d.errorf(pos(n), path, "%q is not header:NAME, cookie:NAME or client_ip", s)
	}
}

// isToken reports whether s is an HTTP token (RFC 9110), as header and cookie names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// unmarshalNode decodes a status code, like 200, or a range, like "200-399".
func (r *StatusRange) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(lo))
	last, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || first < 100 || last > 599 || first > last {
		d.errorf(pos(n), path, "%q is not a status code or range (like 200 or 200-399)", s)
		return
	}
	*r = StatusRange{Min: first, Max: last}
}
