package scg

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// forwardedBlock reads the forwarded-header properties. Sluice always sends
// X-Forwarded-For, -Proto, -Host, -Port and Forwarded with the values of the
// connection it received, appending to the client's own values only when
// the client is a trusted proxy (server.trusted_proxies). So the settings
// that ask for that are accepted (a warning says so), the ones that turn a
// header off or ask for something else are errors, and trusted-proxies (a
// Java regex of addresses) becomes server.trusted_proxies when it is a
// list of addresses or address prefixes.
func (c *converter) forwardedBlock(gw *prop) {
	prefix := true
	defer func() {
		if c.forwardedPrefix == nil || !prefix {
			c.forwardedPrefix = &prefix
		}
	}()
	for _, group := range []string{"x-forwarded", "forwarded"} {
		g := gw.kid(group)
		if g == nil {
			continue
		}
		for _, p := range g.kids {
			on, ok := c.boolean(p)
			if !ok {
				continue
			}
			name := canonical(p.name)
			switch {
			case name == "prefixenabled" && !on:
				prefix = false
			case on && (name == "enabled" || strings.HasSuffix(name, "enabled") || strings.HasSuffix(name, "append")):
				c.warnf(p.value, p.path, "ignored: Sluice sends X-Forwarded-For, -Proto, -Host, -Port and Forwarded on every request, "+
					"appending to the client's values when the client is a trusted proxy (trusted-proxies)")
			default:
				c.errorf(p.value, p.path, "not supported: Sluice always sends X-Forwarded-For, -Proto, -Host, -Port and Forwarded, "+
					"and replaces a client's values unless it is a trusted proxy")
			}
		}
	}
	if p := gw.kid("trusted-proxies"); p != nil {
		s, ok := c.str(p)
		if !ok {
			return
		}
		nets, err := regexPrefixes(s)
		if err != nil {
			c.errorf(p.value, p.path, "not supported: trusted-proxies %q: %v", s, err)
			return
		}
		list := seqNode(p.value)
		list.Style = yaml.FlowStyle
		for _, n := range nets {
			list.Content = append(list.Content, strNode(n.String(), p.value))
		}
		add(c.server, "trusted_proxies", list)
		c.mapPath("server.trusted_proxies", p.path)
	}
}

// ipv4Alt is one alternative of a trusted-proxies regex Sluice can read: an
// IPv4 address with escaped dots, or its first octets followed by .* (a
// prefix of whole octets).
var ipv4Alt = regexp.MustCompile(`^((?:\d{1,3}\\\.){0,3}\d{1,3})(\\\..\*)?$`)

// regexPrefixes turns a trusted-proxies regex (Java, matched against the
// peer's address) into address prefixes: alternatives joined by |, each an
// IPv4 address (10\.0\.0\.1), the first octets of one followed by \..*
// (10\.0\..*), an IPv6 address, or .* (every address).
func regexPrefixes(re string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, alt := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(re, "^"), "$"), "|") {
		alt = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(alt), "^"), "$")
		if alt == ".*" {
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			continue
		}
		if a, err := netip.ParseAddr(strings.ReplaceAll(alt, `\`, "")); err == nil && !strings.Contains(alt, "*") {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		m := ipv4Alt.FindStringSubmatch(alt)
		if m == nil {
			return nil, fmt.Errorf("%q is not an address or the first octets of one followed by \\..*; "+
				"Sluice trusts address prefixes: write the alternatives as 10\\.0\\..*|192\\.168\\.1\\.7", alt)
		}
		octets := strings.Split(m[1], `\.`)
		if m[2] == "" && len(octets) != 4 || m[2] != "" && len(octets) == 4 {
			return nil, fmt.Errorf("%q is not an address or the first octets of one followed by \\..*", alt)
		}
		full := append(octets, make([]string, 4-len(octets))...)
		for i := len(octets); i < 4; i++ {
			full[i] = "0"
		}
		a, err := netip.ParseAddr(strings.Join(full, "."))
		if err != nil {
			return nil, fmt.Errorf("%q: %v", alt, err)
		}
		out = append(out, netip.PrefixFrom(a, 8*len(octets)))
	}
	return out, nil
}
