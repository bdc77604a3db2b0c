package discovery

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// zone is a DNS server on 127.0.0.1 whose answers the test changes.
type zone struct {
	mu      sync.Mutex
	records map[uint16][]string // qtype → RRs in zone-file syntax
	rcode   int
	queries map[uint16]int
	srv     *dns.Server
	addr    string
}

func startZone(t *testing.T) *zone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{records: map[uint16][]string{}, queries: map[uint16]int{}, addr: pc.LocalAddr().String()}
	started := make(chan struct{})
	z.srv = &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go z.srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { z.stop() })
	return z
}

func (z *zone) stop() { z.srv.Shutdown() }

func (z *zone) set(qtype uint16, rrs ...string) {
	z.mu.Lock()
	z.records[qtype] = rrs
	z.mu.Unlock()
}

func (z *zone) fail(rcode int) {
	z.mu.Lock()
	z.rcode = rcode
	z.mu.Unlock()
}

func (z *zone) count(qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[qtype]
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	z.queries[q.Qtype]++
	if z.rcode != dns.RcodeSuccess {
		m.Rcode = z.rcode
		w.WriteMsg(m)
		return
	}
	for _, s := range z.records[q.Qtype] {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		if rr.Header().Name == q.Name {
			m.Answer = append(m.Answer, rr)
		}
	}
	if q.Qtype == dns.TypeSRV {
		for _, s := range z.records[dns.TypeA] {
			rr, _ := dns.NewRR(s)
			m.Extra = append(m.Extra, rr)
		}
	}
	w.WriteMsg(m)
}

// collector records what a source publishes.
type collector struct {
	mu   sync.Mutex
	sets [][]endpoint.Spec
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 100)} }

func (c *collector) publish(s []endpoint.Spec) {
	c.mu.Lock()
	c.sets = append(c.sets, s)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *collector) last() []endpoint.Spec {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sets) == 0 {
		return nil
	}
	return c.sets[len(c.sets)-1]
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sets)
}

// await waits for the last published set to equal want.
func (c *collector) await(t *testing.T, timeout time.Duration, want ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := addrs(c.last()); slices.Equal(got, want) {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("published %v, want %v", addrs(c.last()), want)
		}
	}
}

func addrs(specs []endpoint.Spec) []string {
	out := []string{}
	for _, s := range specs {
		a := s.Addr
		if s.Draining {
			a += " draining"
		}
		out = append(out, a)
	}
	return out
}

func run(t *testing.T, src Source) *collector {
	c := newCollector()
	r := Start(src, c.publish)
	t.Cleanup(r.Stop)
	return c
}

func TestDNSRecordsChange(t *testing.T) {
	tests := []struct {
		name   string
		record string
		before map[uint16][]string
		after  map[uint16][]string
		want1  []string
		want2  []string
	}{
		{
			name:   "A",
			record: RecordA,
			before: map[uint16][]string{dns.TypeA: {"api.test. 1 IN A 10.0.0.1", "api.test. 1 IN A 10.0.0.2"}},
			after:  map[uint16][]string{dns.TypeA: {"api.test. 1 IN A 10.0.0.2", "api.test. 1 IN A 10.0.0.3"}},
			want1:  []string{"10.0.0.1:8080", "10.0.0.2:8080"},
			want2:  []string{"10.0.0.2:8080", "10.0.0.3:8080"},
		},
		{
			name:   "dual stack",
			record: RecordIP,
			before: map[uint16][]string{dns.TypeA: {"api.test. 1 IN A 10.0.0.1"}, dns.TypeAAAA: {"api.test. 1 IN AAAA fd00::1"}},
			after:  map[uint16][]string{dns.TypeAAAA: {"api.test. 1 IN AAAA fd00::1", "api.test. 1 IN AAAA fd00::2"}},
			want1:  []string{"10.0.0.1:8080", "[fd00::1]:8080"},
			want2:  []string{"[fd00::1]:8080", "[fd00::2]:8080"},
		},
		{
			name:   "SRV",
			record: RecordSRV,
			before: map[uint16][]string{
				dns.TypeSRV: {"api.test. 1 IN SRV 10 5 9001 a.test.", "api.test. 1 IN SRV 10 3 9002 b.test.", "api.test. 1 IN SRV 20 1 9003 c.test."},
				dns.TypeA:   {"a.test. 1 IN A 10.0.0.1", "b.test. 1 IN A 10.0.0.2", "c.test. 1 IN A 10.0.0.3"},
			},
			after: map[uint16][]string{
				dns.TypeSRV: {"api.test. 1 IN SRV 10 5 9001 a.test."},
				dns.TypeA:   {"a.test. 1 IN A 10.0.0.1"},
			},
			want1: []string{"10.0.0.1:9001", "10.0.0.2:9002"},
			want2: []string{"10.0.0.1:9001"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := startZone(t)
			for q, rrs := range tc.before {
				z.set(q, rrs...)
			}
			c := run(t, &DNS{Name: "api.test", Record: tc.record, Port: 8080, Resolver: z.addr, Log: quiet, MinTTL: 100 * time.Millisecond, MaxTTL: 300 * time.Millisecond})
			c.await(t, 3*time.Second, tc.want1...)
			z.set(dns.TypeA)
			z.set(dns.TypeAAAA)
			for q, rrs := range tc.after {
				z.set(q, rrs...)
			}
			c.await(t, 3*time.Second, tc.want2...)
		})
	}
}

func TestDNSSRVWeights(t *testing.T) {
	z := startZone(t)
	z.set(dns.TypeSRV, "api.test. 5 IN SRV 0 7 9001 a.test.", "api.test. 5 IN SRV 0 0 9002 b.test.")
	z.set(dns.TypeA, "a.test. 5 IN A 10.0.0.1", "b.test. 5 IN A 10.0.0.2")
	specs, ttl, err := (&DNS{Name: "api.test", Record: RecordSRV, Resolver: z.addr}).Lookup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []endpoint.Spec{{Addr: "10.0.0.1:9001", Weight: 7}, {Addr: "10.0.0.2:9002", Weight: 1}}
	if !slices.Equal(specs, want) || ttl != 5*time.Second {
		t.Fatalf("got %v ttl %s, want %v ttl 5s", specs, ttl, want)
	}
}

// TestDNSTTL checks that the next lookup waits for the records' TTL, bounded
// by min_ttl and max_ttl.
func TestDNSTTL(t *testing.T) {
	tests := []struct {
		name           string
		ttl            string
		min, max       time.Duration
		window         time.Duration
		lookupsAtLeast int
		lookupsAtMost  int
	}{
		// TTL 1s within [100ms, 5s]: about 3 lookups in 2.5s (t=0, 1, 2).
		{name: "ttl honoured", ttl: "1", min: 100 * time.Millisecond, max: 5 * time.Second, window: 2500 * time.Millisecond, lookupsAtLeast: 2, lookupsAtMost: 4},
		// TTL 0 raised to min 500ms: about 5 lookups in 2.2s, not hundreds.
		{name: "min bound", ttl: "0", min: 500 * time.Millisecond, max: 5 * time.Second, window: 2200 * time.Millisecond, lookupsAtLeast: 3, lookupsAtMost: 6},
		// TTL 3600 lowered to max 300ms: about 7 lookups in 2s, not 1.
		{name: "max bound", ttl: "3600", min: 100 * time.Millisecond, max: 300 * time.Millisecond, window: 2 * time.Second, lookupsAtLeast: 4, lookupsAtMost: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := startZone(t)
			z.set(dns.TypeA, "api.test. "+tc.ttl+" IN A 10.0.0.1")
			c := run(t, &DNS{Name: "api.test", Record: RecordA, Port: 80, Resolver: z.addr, Log: quiet, MinTTL: tc.min, MaxTTL: tc.max})
			c.await(t, 2*time.Second, "10.0.0.1:80")
			start := z.count(dns.TypeA)
			time.Sleep(tc.window)
			n := z.count(dns.TypeA) - start
			if n < tc.lookupsAtLeast || n > tc.lookupsAtMost {
				t.Fatalf("%d lookups in %s, want %d..%d", n, tc.window, tc.lookupsAtLeast, tc.lookupsAtMost)
			}
			if c.count() != 1 {
				t.Fatalf("unchanged records published %d times, want once", c.count())
			}
		})
	}
}

// TestDNSFailureKeepsLastGoodSet: SERVFAIL, NXDOMAIN, an empty answer and a
// stopped server all keep the set; the source recovers when answers return.
func TestDNSFailureKeepsLastGoodSet(t *testing.T) {
	tests := []struct {
		name    string
		failure func(z *zone)
	}{
		{name: "SERVFAIL", failure: func(z *zone) { z.fail(dns.RcodeServerFailure) }},
		{name: "NXDOMAIN", failure: func(z *zone) { z.fail(dns.RcodeNameError) }},
		{name: "no records", failure: func(z *zone) { z.set(dns.TypeA) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := startZone(t)
			z.set(dns.TypeA, "api.test. 1 IN A 10.0.0.1")
			c := run(t, &DNS{Name: "api.test", Record: RecordA, Port: 80, Resolver: z.addr, Log: quiet, MinTTL: 50 * time.Millisecond, MaxTTL: 100 * time.Millisecond, Timeout: 200 * time.Millisecond})
			c.await(t, 2*time.Second, "10.0.0.1:80")
			before := z.count(dns.TypeA)
			tc.failure(z)
			if !waitFor(2*time.Second, func() bool { return z.count(dns.TypeA) >= before+3 }) {
				t.Fatal("no lookups while failing")
			}
			if got := addrs(c.last()); !slices.Equal(got, []string{"10.0.0.1:80"}) || c.count() != 1 {
				t.Fatalf("after failures: %d publications, last %v; want the last good set only", c.count(), got)
			}
			z.fail(dns.RcodeSuccess)
			z.set(dns.TypeA, "api.test. 1 IN A 10.0.0.2")
			c.await(t, 2*time.Second, "10.0.0.2:80")
		})
	}
	t.Run("server stopped", func(t *testing.T) {
		z := startZone(t)
		z.set(dns.TypeA, "api.test. 1 IN A 10.0.0.1")
		c := run(t, &DNS{Name: "api.test", Record: RecordA, Port: 80, Resolver: z.addr, Log: quiet, MinTTL: 50 * time.Millisecond, MaxTTL: 100 * time.Millisecond, Timeout: 100 * time.Millisecond})
		c.await(t, 2*time.Second, "10.0.0.1:80")
		z.stop()
		time.Sleep(700 * time.Millisecond)
		if got := addrs(c.last()); !slices.Equal(got, []string{"10.0.0.1:80"}) || c.count() != 1 {
			t.Fatalf("server down: %d publications, last %v; want the last good set only", c.count(), got)
		}
	})
}

var quiet = slog.New(slog.DiscardHandler)

func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}
