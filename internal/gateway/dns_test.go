package gateway_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// srvZone answers SRV queries for api.test. with the ports it is given,
// all on 127.0.0.1, with a TTL of 1 s.
type srvZone struct {
	mu    sync.Mutex
	ports []int32
}

func (z *srvZone) set(ports ...int32) {
	z.mu.Lock()
	z.ports = ports
	z.mu.Unlock()
}

func (z *srvZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	if q := req.Question[0]; q.Qtype == dns.TypeSRV && q.Name == "api.test." {
		for i, p := range z.ports {
			target := fmt.Sprintf("b%d.test.", i)
			m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1}, Port: uint16(p), Target: target, Weight: 1})
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)})
		}
	}
	w.WriteMsg(m)
}

// TestDNSDiscoveryScaleOut is scenario 10 through DNS: one name whose
// backends grow from 2 to 6 while requests flow; the new ones receive
// traffic within a few TTLs, and nothing fails.
func TestDNSDiscoveryScaleOut(t *testing.T) {
	t.Parallel()
	var backends []*countingBackend
	var ports []int32
	for i := range 6 {
		b := newCountingBackend(t, fmt.Sprint("b", i))
		backends = append(backends, b)
		ports = append(ports, b.port())
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	zone := &srvZone{}
	zone.set(ports[:2]...)
	srv := &dns.Server{PacketConn: pc, Handler: zone}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	g := gatewaytest.Start(t, `
		upstreams:
		  api:
		    discovery: {type: dns, name: api.test, record: SRV, resolver: "`+pc.LocalAddr().String()+`", min_ttl: 200ms, max_ttl: 1s}
		routes:
		  - {id: api, uri: "lb://api"}
		`)
	c := gatewaytest.Client(t)
	get := func() error {
		resp, err := c.Get(gatewaytest.URL(g, "/x"))
		if err != nil {
			return err
		}
		ioCopyDiscardBody(resp)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if !gatewaytest.Eventually(5*time.Second, func() bool { return len(g.Cluster("api").Endpoints()) == 2 }) {
		t.Fatal("the first two endpoints were not discovered")
	}
	zone.set(ports...)
	start := time.Now()
	deadline := start.Add(8 * time.Second)
	for {
		if err := get(); err != nil {
			t.Fatalf("request during scale-out: %v", err)
		}
		all := true
		for _, b := range backends {
			all = all && b.hits.Load() > 0
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every new backend got traffic within 8 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("all 6 backends served within %s of the records growing", time.Since(start).Round(10*time.Millisecond))
}
