package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// gatewayWide are the server keys that apply to the whole gateway and so
// have no place in one listener.
var gatewayWide = []string{"trusted_proxies", "untrusted_headers", "response_timeout", "max_body_size", "max_concurrent_requests", "queue"}

// unmarshalNode decodes a listener, saying so when it holds a key that only
// the server block has.
func (l *Listener) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.MappingNode {
		kept := *n
		kept.Content = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := resolve(n.Content[i]); k.Kind == yaml.ScalarNode && slices.Contains(gatewayWide, k.Value) {
				d.keyErrorf(pos(k), path, "%q is set for the whole gateway, on server, not per listener", k.Value)
				continue
			}
			kept.Content = append(kept.Content, n.Content[i], n.Content[i+1])
		}
		n = &kept
	}
	d.structure(n, reflect.ValueOf(l).Elem(), path)
}

// unmarshalNode decodes the TLS mapping, or off: no TLS (how a listener
// says it does not take server.tls).
func (t *ServerTLS) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value == "off" {
		t.off = true
		return
	}
	d.structure(n, reflect.ValueOf(t).Elem(), path)
}

// checkServerTLS checks the TLS termination settings at path and fills in
// the default minimum version.
func (d *decoder) checkServerTLS(t *ServerTLS, path string) {
	if len(t.Certificates) == 0 {
		d.invalid(path, "at least one entry in certificates is required")
	}
	for i, cp := range t.Certificates {
		p := fmt.Sprintf("%s.certificates[%d]", path, i)
		if cp.CertFile == "" || cp.KeyFile == "" {
			d.invalid(p, "cert_file and key_file are both required")
		}
		d.checkFiles(p, map[string]string{"cert_file": cp.CertFile, "key_file": cp.KeyFile})
	}
	d.checkFiles(path, map[string]string{"client_ca_file": t.ClientCAFile})
	if t.MinVersion == "" {
		t.MinVersion = "1.2"
	}
	d.oneOf(path+".min_version", t.MinVersion, "1.2", "1.3")
}

// listenerFields are the connection settings that a listener takes from the
// server block when it does not set them, by their path under it.
var listenerFields = []struct {
	path string
	copy func(dst *Listener, src *Server)
}{
	{"read_header_timeout", func(l *Listener, s *Server) { l.ReadHeaderTimeout = s.ReadHeaderTimeout }},
	{"idle_timeout", func(l *Listener, s *Server) { l.IdleTimeout = s.IdleTimeout }},
	{"release_idle_after", func(l *Listener, s *Server) { l.ReleaseIdleAfter = s.ReleaseIdleAfter }},
	{"max_header_bytes", func(l *Listener, s *Server) { l.MaxHeaderBytes = s.MaxHeaderBytes }},
	{"body_timeout", func(l *Listener, s *Server) { l.BodyTimeout = s.BodyTimeout }},
	{"body_min_rate", func(l *Listener, s *Server) { l.BodyMinRate = s.BodyMinRate }},
	{"max_connections", func(l *Listener, s *Server) { l.MaxConnections = s.MaxConnections }},
	{"keepalive.enabled", func(l *Listener, s *Server) { l.KeepAlive.Enabled = s.KeepAlive.Enabled }},
	{"keepalive.idle", func(l *Listener, s *Server) { l.KeepAlive.Idle = s.KeepAlive.Idle }},
	{"keepalive.interval", func(l *Listener, s *Server) { l.KeepAlive.Interval = s.KeepAlive.Interval }},
	{"keepalive.count", func(l *Listener, s *Server) { l.KeepAlive.Count = s.KeepAlive.Count }},
	{"h2c", func(l *Listener, s *Server) { l.H2C = s.H2C }},
	{"tls", func(l *Listener, s *Server) { l.TLS = s.TLS }},
}

// boundAddr is a listen address already taken by a listener.
type boundAddr struct {
	path, addr, host string
	port             int
}

// checkListeners fills in what each of server.listeners does not set from
// the server block (checked before), checks what it sets, and makes sure
// that no two listeners, the primary included, share an address or a name.
func (d *decoder) checkListeners(s *Server) {
	var bound []boundAddr
	if host, port, err := splitHostPort(s.Listen, true); err == nil {
		n, _ := strconv.Atoi(port)
		bound = append(bound, boundAddr{"server.listen", s.Listen, host, n})
	}
	names := map[string]string{s.Listen: "server.listen"} // name → where it was given
	for i := range s.Listeners {
		l := &s.Listeners[i]
		p := l.Path // not always server.listeners[i]: an empty item is left out
		for _, f := range listenerFields {
			if !d.written(p + "." + f.path) {
				f.copy(l, s)
			}
		}
		if d.failed[p] {
			continue // not a mapping
		}
		if d.written(p+".tls") && l.TLS != nil {
			if l.TLS.off {
				l.TLS = nil
			} else {
				d.checkServerTLS(l.TLS, p+".tls")
			}
		}
		if d.written(p + ".max_header_bytes") {
			d.positive(p+".max_header_bytes", l.MaxHeaderBytes)
		}
		if d.written(p + ".max_connections") {
			d.atLeast(p+".max_connections", l.MaxConnections, 0)
		}
		if ka := l.KeepAlive; ka.Enabled {
			for _, f := range []struct {
				key string
				v   int64
			}{{"idle", int64(ka.Idle)}, {"interval", int64(ka.Interval)}, {"count", int64(ka.Count)}} {
				// A value taken from an enabled server keepalive was checked there.
				if fp := p + ".keepalive." + f.key; d.written(fp) || !s.KeepAlive.Enabled {
					d.positive(fp, f.v)
				}
			}
		}

		host, port, err := splitHostPort(l.Listen, true)
		switch {
		case l.Listen == "":
			d.missing(l.Pos, p, "listen", "must not be empty")
		case err != nil:
			d.invalid(p+".listen", "%q is not a valid address: %v", l.Listen, err)
		default:
			n, _ := strconv.Atoi(port)
			b := boundAddr{p + ".listen", l.Listen, host, n}
			for _, o := range bound {
				switch {
				case n == 0 || n != o.port:
				case sameHost(host, o.host):
					d.invalid(b.path, "%q is already the address of %s", l.Listen, d.place(o.path))
				case isWildcard(host) || isWildcard(o.host):
					d.invalid(b.path, "%q overlaps %q of %s (the same port, and one of them on all interfaces)", l.Listen, o.addr, d.place(o.path))
				}
			}
			bound = append(bound, b)
		}

		namePath := p + ".name"
		switch {
		case d.written(namePath) && l.Name == "":
			d.invalid(namePath, "must not be empty")
			continue
		case l.Name == "" && l.Listen == "":
			continue
		case l.Name == "":
			l.Name, namePath = l.Listen, p+".listen"
		}
		if first, ok := names[l.Name]; ok {
			if namePath == p+".name" {
				d.invalid(namePath, "duplicate listener name %q (also the name of %s)", l.Name, d.place(first))
			} else if !d.failed[namePath] {
				// The address is not the same, or that would have been said.
				d.invalid(p, "listener name %q, by default its listen address, is already the name of %s; set name", l.Name, d.place(first))
			}
			continue
		}
		names[l.Name] = namePath
	}
}

// written reports whether the value at path was written in the file.
func (d *decoder) written(path string) bool {
	_, ok := d.at[path]
	return ok
}

// place names the value at path for a message about another one.
func (d *decoder) place(path string) string {
	if path == "server.listen" && !d.written(path) {
		return "the default server.listen"
	}
	return fmt.Sprintf("%s at line %d", path, d.pos(path).Line)
}

// isWildcard reports whether a listen host means every interface.
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// sameHost reports whether two listen hosts are the same IP address or name.
func sameHost(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 == nil && err2 == nil {
		return x.Unmap() == y.Unmap()
	}
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
