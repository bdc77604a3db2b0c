package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// parseSources parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and single
// addresses ("10.0.0.1", "::1").
func parseSources(sources []string) ([]netip.Prefix, error) {
	if len(sources) == 0 {
		return nil, errors.New("sources: required")
	}
	var prefixes []netip.Prefix
	for _, s := range sources {
		if p, err := netip.ParsePrefix(s); err == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("source %q is not an IP address or CIDR", s)
		}
		a = a.Unmap().WithZone("")
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return prefixes, nil
}

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddrPredicate is RemoteAddr: the TCP peer is within sources.
type remoteAddrPredicate struct {
	sources []netip.Prefix
}

func newRemoteAddr(sources []string) (Predicate, error) {
	p, err := parseSources(sources)
	if err != nil {
		return nil, err
	}
	return &remoteAddrPredicate{sources: p}, nil
}

func (p *remoteAddrPredicate) Match(in *Input) bool {
	return containsAddr(p.sources, in.Remote)
}

// xForwardedRemoteAddrPredicate is XForwardedRemoteAddr: the client address,
// as ClientAddr finds it, is within sources.
type xForwardedRemoteAddrPredicate struct {
	sources []netip.Prefix
	trusted []netip.Prefix
}

func newXForwardedRemoteAddr(sources []string, trusted []netip.Prefix) (Predicate, error) {
	p, err := parseSources(sources)
	if err != nil {
		return nil, err
	}
	return &xForwardedRemoteAddrPredicate{sources: p, trusted: trusted}, nil
}

func (p *xForwardedRemoteAddrPredicate) Match(in *Input) bool {
	return containsAddr(p.sources, ClientAddr(in, p.trusted))
}

// ClientAddr returns the client address of in. If the peer (in.Remote) is
// not within trusted, it is the client: its X-Forwarded-For is not believed.
// Otherwise X-Forwarded-For is walked from the right, skipping trusted
// entries; the first untrusted entry is the client, or the leftmost entry if
// all are trusted, or the peer if there is no entry. An unparsable entry
// yields an invalid address, which no source contains.
func ClientAddr(in *Input, trusted []netip.Prefix) netip.Addr {
	client := in.Remote
	if !containsAddr(trusted, client) {
		return client
	}
	xff := in.Request.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		for line := xff[i]; ; {
			entry := line
			j := strings.LastIndexByte(line, ',')
			if j >= 0 {
				entry, line = line[j+1:], line[:j]
			}
			if entry = strings.TrimSpace(entry); entry != "" {
				client = parseForwarded(entry)
				if !containsAddr(trusted, client) {
					return client
				}
			}
			if j < 0 {
				break
			}
		}
	}
	return client
}

// parseForwarded parses one X-Forwarded-For entry: an IP, possibly with a
// port ("1.2.3.4:80", "[::1]:80").
func parseForwarded(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}
