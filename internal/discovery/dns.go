package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// DNS record kinds a DNS source resolves.
const (
	RecordA    = "A"      // IPv4 addresses, with Port
	RecordAAAA = "AAAA"   // IPv6 addresses, with Port
	RecordIP   = "A+AAAA" // both (dual stack)
	RecordSRV  = "SRV"    // targets and ports (and weights) from SRV records
)

// DNS resolves a name in the background and publishes its addresses. It
// asks Resolver directly (not the system resolver) so that it sees the
// records' TTLs; the next lookup comes after the smallest TTL of the answer,
// bounded by MinTTL and MaxTTL. A failed lookup (timeout, SERVFAIL, NXDOMAIN,
// no records) keeps the last good set and is retried after MinTTL.
type DNS struct {
	Name     string // looked up as a fully qualified name
	Record   string // RecordA, RecordAAAA, RecordIP (default) or RecordSRV
	Port     int    // for A and AAAA records
	Resolver string // host:port; default: the first nameserver of /etc/resolv.conf
	MinTTL   time.Duration
	MaxTTL   time.Duration
	Timeout  time.Duration // per query; default 2s
	Log      *slog.Logger
	Stats    *Stats
}

func (s *DNS) stats() *Stats { return s.Stats }

// Run resolves until ctx ends.
func (s *DNS) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	out := &dedup{publish: publish, stats: s.Stats}
	for {
		specs, ttl, err := s.Lookup(ctx)
		wait := s.MinTTL
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.Stats.failQuiet(err)
			log.Warn("dns discovery failed; keeping the last endpoints", "name", s.Name, "error", err.Error(), "retry_in", wait.String())
		} else {
			s.Stats.okQuiet()
			out.send(specs)
			wait = min(max(ttl, s.MinTTL), s.MaxTTL)
		}
		if wait <= 0 {
			wait = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Lookup resolves the name once and returns the endpoints and the smallest TTL seen.
func (s *DNS) Lookup(ctx context.Context) ([]endpoint.Spec, time.Duration, error) {
	server := s.Resolver
	if server == "" {
		var err error
		if server, err = SystemResolver(); err != nil {
			return nil, 0, err
		}
	}
	r := &resolver{server: server, timeout: s.Timeout, ttl: -1}
	if r.timeout <= 0 {
		r.timeout = 2 * time.Second
	}
	name := dns.Fqdn(s.Name)
	var specs []endpoint.Spec
	var err error
	switch s.Record {
	case RecordSRV:
		specs, err = r.srv(ctx, name)
	case RecordA, RecordAAAA:
		specs, err = r.hosts(ctx, name, s.Port, s.Record == RecordA, s.Record == RecordAAAA)
	default:
		specs, err = r.hosts(ctx, name, s.Port, true, true)
	}
	if err == nil && len(specs) == 0 {
		err = fmt.Errorf("%s: no records", name)
	}
	if err != nil {
		return nil, 0, err
	}
	return specs, r.ttl, nil
}

// SystemResolver returns the first nameserver of /etc/resolv.conf as host:port.
func SystemResolver() (string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	if len(cc.Servers) == 0 {
		return "", errors.New("/etc/resolv.conf lists no nameserver")
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// resolver runs the queries of one lookup and remembers the smallest TTL.
type resolver struct {
	server  string
	timeout time.Duration
	ttl     time.Duration // -1 until an answer is seen
}

func (r *resolver) seen(ttl uint32) {
	d := time.Duration(ttl) * time.Second
	if r.ttl < 0 || d < r.ttl {
		r.ttl = d
	}
}

// query asks one question over UDP, and again over TCP if the answer was truncated.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	c := &dns.Client{Timeout: r.timeout}
	resp, _, err := c.ExchangeContext(ctx, m, r.server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, r.server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], name, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s %s: no such name (NXDOMAIN)", dns.TypeToString[qtype], name)
	default:
		return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qtype], name, dns.RcodeToString[resp.Rcode])
	}
}

// hosts resolves name to addresses (A and/or AAAA) with port.
func (r *resolver) hosts(ctx context.Context, name string, port int, v4, v6 bool) ([]endpoint.Spec, error) {
	var specs []endpoint.Spec
	for _, q := range []struct {
		on    bool
		qtype uint16
	}{{v4, dns.TypeA}, {v6, dns.TypeAAAA}} {
		if !q.on {
			continue
		}
		resp, err := r.query(ctx, name, q.qtype)
		if err != nil {
			return nil, err
		}
		for _, ip := range r.addrs(resp.Answer, q.qtype) {
			specs = append(specs, endpoint.Spec{Addr: net.JoinHostPort(ip, strconv.Itoa(port)), Weight: 1})
		}
	}
	return specs, nil
}

// addrs returns the addresses of type qtype in rrs (CNAMEs are followed by
// the server), recording their TTLs.
func (r *resolver) addrs(rrs []dns.RR, qtype uint16) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				r.seen(rr.Hdr.Ttl)
				out = append(out, rr.A.String())
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				r.seen(rr.Hdr.Ttl)
				out = append(out, rr.AAAA.String())
			}
		}
	}
	return out
}

// srv resolves an SRV name: the targets of the best (lowest) priority, with
// their ports and weights, their addresses taken from the additional section
// or looked up.
func (r *resolver) srv(ctx context.Context, name string) ([]endpoint.Spec, error) {
	resp, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var records []*dns.SRV
	best := -1
	for _, rr := range resp.Answer {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			r.seen(s.Hdr.Ttl)
			records = append(records, s)
			if best < 0 || int(s.Priority) < best {
				best = int(s.Priority)
			}
		}
	}
	extra := map[string][]string{}
	for _, rr := range resp.Extra {
		switch rr := rr.(type) {
		case *dns.A:
			r.seen(rr.Hdr.Ttl)
			extra[dns.CanonicalName(rr.Hdr.Name)] = append(extra[dns.CanonicalName(rr.Hdr.Name)], rr.A.String())
		case *dns.AAAA:
			r.seen(rr.Hdr.Ttl)
			extra[dns.CanonicalName(rr.Hdr.Name)] = append(extra[dns.CanonicalName(rr.Hdr.Name)], rr.AAAA.String())
		}
	}
	var specs []endpoint.Spec
	for _, s := range records {
		if int(s.Priority) != best {
			continue
		}
		ips, ok := extra[dns.CanonicalName(s.Target)]
		if !ok {
			hs, err := r.hosts(ctx, s.Target, int(s.Port), true, true)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				host, _, _ := net.SplitHostPort(h.Addr)
				ips = append(ips, host)
			}
		}
		w := min(max(int(s.Weight), 1), 1000)
		for _, ip := range ips {
			specs = append(specs, endpoint.Spec{Addr: net.JoinHostPort(ip, strconv.Itoa(int(s.Port))), Weight: w})
		}
	}
	return specs, nil
}
