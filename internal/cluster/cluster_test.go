package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/balance"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/pool"
)

type server struct {
	addr   string
	srv    *http.Server
	hits   atomic.Int64
	conns  atomic.Int64
	closed atomic.Int64
}

func serve(t testing.TB, h http.HandlerFunc) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		if h != nil {
			h(w, r)
			return
		}
		w.Write([]byte("ok"))
	}), ConnState: func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed:
			s.closed.Add(1)
		}
	}}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func newCluster(opt Options) *Cluster {
	if opt.NewPool == nil {
		opt.NewPool = func(addr string) *pool.Pool { return pool.New(pool.Options{Addr: addr}) }
	}
	return New(opt)
}

func specs(addrs ...string) []endpoint.Spec {
	out := make([]endpoint.Spec, len(addrs))
	for i, a := range addrs {
		out[i] = endpoint.Spec{Addr: a}
	}
	return out
}

func forward(t testing.TB, c *Cluster, method string, p *Policy) (*http.Response, error) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(strings.Repeat("x", 1024))
	}
	req, _ := http.NewRequest(method, "http://upstream/", body)
	req = req.WithContext(exchange.With(context.Background(), &exchange.Exchange{}))
	resp, err := c.Forward(req, p)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestRefusedIsRetriedElsewhereForAnyMethod(t *testing.T) {
	live := serve(t, nil)
	dead := deadAddr(t)
	c := newCluster(Options{Name: "u", ConsecutiveFailures: 2, MaxEjectionPercent: 50})
	defer c.Close()
	c.SetEndpoints(specs(dead, live.addr))
	p := DefaultPolicy
	for i := 0; i < 20; i++ {
		if _, err := forward(t, c, http.MethodPost, &p); err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
	}
	if live.hits.Load() != 20 {
		t.Fatalf("live backend got %d, want 20", live.hits.Load())
	}
	var deadEP *endpoint.Endpoint
	for _, e := range c.Endpoints() {
		if e.Addr == dead {
			deadEP = e
		}
	}
	if !deadEP.Ejected(time.Now().UnixNano()) {
		t.Fatal("dead endpoint not ejected after consecutive connect failures")
	}
	if c.Retries[RetryNow].Load() == 0 || c.Retries[RetryNow].Load() > 3 {
		t.Fatalf("immediate retries = %d; after ejection no more should be needed", c.Retries[RetryNow].Load())
	}
}

func TestAllRefusedAnswers502WithoutRetryingSameEndpoint(t *testing.T) {
	d1, d2 := deadAddr(t), deadAddr(t)
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(d1, d2))
	p := DefaultPolicy
	p.Attempts = 5
	_, err := forward(t, c, http.MethodGet, &p)
	ge, ok := err.(*exchange.Error)
	if !ok || ge.Status != http.StatusBadGateway || ge.Reason != exchange.UpstreamConnectFailure {
		t.Fatalf("err = %v, want 502 upstream_connect_failure", err)
	}
	if n := c.Failures[pool.StageDial].Load(); n != 2 {
		t.Fatalf("dial failures = %d, want 2 (each endpoint once)", n)
	}
}

func TestStatusRetryOnlyForIdempotent(t *testing.T) {
	var n atomic.Int64
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	p.Statuses = []int{503}
	p.BackoffBase = time.Millisecond
	resp, err := forward(t, c, http.MethodGet, &p)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v, want 200 after one retry", resp, err)
	}
	resp, err = forward(t, c, http.MethodPost, &p)
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("POST: %v %v, want the 503 passed on", resp, err)
	}
}

func TestResponseTimeout(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) })
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	p.ResponseTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := forward(t, c, http.MethodGet, &p)
	ge, ok := err.(*exchange.Error)
	if !ok || ge.Status != http.StatusGatewayTimeout || ge.Reason != exchange.ResponseTimeout {
		t.Fatalf("err = %v, want 504 response_timeout", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("took %v; the response timeout is 100ms over all tries", d)
	}
}

func TestDrainingEndpoint(t *testing.T) {
	release := make(chan struct{})
	a := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			<-release
		}
		w.Write([]byte("a"))
	})
	b := serve(t, nil)
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(a.addr, b.addr))
	p := DefaultPolicy
	for i := 0; i < 10; i++ {
		forward(t, c, http.MethodGet, &p)
	}
	// One slow request in flight on a.
	done := make(chan error, 1)
	go func() {
		for {
			req, _ := http.NewRequest("GET", "http://u/", nil)
			req.Header.Set("X-Slow", "1")
			req = req.WithContext(exchange.With(context.Background(), &exchange.Exchange{}))
			resp, err := c.Forward(req, &p)
			if err != nil {
				done <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) == "a" {
				done <- nil
				return
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for a.hits.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	aHits := a.hits.Load()
	c.SetEndpoints([]endpoint.Spec{{Addr: a.addr, Draining: true}, {Addr: b.addr}})
	var aEP *endpoint.Endpoint
	for _, e := range c.Endpoints() {
		if e.Addr == a.addr {
			aEP = e
		}
	}
	if s := aEP.Pool.Stats(); s.Idle != 0 {
		t.Fatalf("draining endpoint kept %d idle connections", s.Idle)
	}
	for i := 0; i < 20; i++ {
		forward(t, c, http.MethodGet, &p)
	}
	if got := a.hits.Load(); got != aHits {
		t.Fatalf("draining endpoint got %d new requests", got-aHits)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request on the draining endpoint failed: %v", err)
	}
	// Every endpoint draining: keep using them rather than failing.
	c.SetEndpoints([]endpoint.Spec{{Addr: a.addr, Draining: true}, {Addr: b.addr, Draining: true}})
	if _, err := forward(t, c, http.MethodGet, &p); err != nil {
		t.Fatalf("all draining: %v", err)
	}
	// Removed: drained, no new requests, pool released.
	c.SetEndpoints(specs(b.addr))
	if len(c.Endpoints()) != 1 {
		t.Fatalf("endpoints = %d", len(c.Endpoints()))
	}
}

func TestStateSurvivesSetEndpoints(t *testing.T) {
	a := serve(t, nil)
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(a.addr))
	p := DefaultPolicy
	forward(t, c, http.MethodGet, &p)
	before := c.Endpoints()[0]
	c.SetEndpoints(specs(a.addr, deadAddr(t)))
	if c.Endpoints()[0] != before {
		t.Fatal("endpoint state replaced for an unchanged address")
	}
	forward(t, c, http.MethodGet, &p)
	if a.conns.Load() != 1 {
		t.Fatalf("connections = %d, want 1 (pool kept)", a.conns.Load())
	}
}

func TestBalancersSpread(t *testing.T) {
	for _, kind := range []string{"round_robin", "least_request", "random"} {
		t.Run(kind, func(t *testing.T) {
			a, b := serve(t, nil), serve(t, nil)
			picker, _ := balance.New(kind, "")
			c := newCluster(Options{Name: "u", Picker: picker})
			defer c.Close()
			c.SetEndpoints(specs(a.addr, b.addr))
			p := DefaultPolicy
			for i := 0; i < 200; i++ {
				forward(t, c, http.MethodGet, &p)
			}
			if a.hits.Load() < 60 || b.hits.Load() < 60 {
				t.Fatalf("spread %d/%d", a.hits.Load(), b.hits.Load())
			}
		})
	}
}

// BenchmarkForward measures the cluster, pool and retry machinery on the
// fast path (a pooled connection, no retry) against a real backend.
func BenchmarkForward(b *testing.B) {
	s := serve(b, nil)
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	ctx := exchange.With(context.Background(), &exchange.Exchange{})
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://upstream/", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Forward(req, &p)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkPoolOnly is BenchmarkForward without the cluster: the same request
// straight through the endpoint's pool. Forward's allocs/op minus this one's
// is what picking, retry bookkeeping and the budget cost on the fast path.
func BenchmarkPoolOnly(b *testing.B) {
	s := serve(b, nil)
	p := pool.New(pool.Options{Addr: s.addr})
	defer p.Drain(nil)
	ctx := exchange.With(context.Background(), &exchange.Exchange{})
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := p.RoundTrip(ctx, req, time.Now().Add(30*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkTransportBaseline is the same request through Go's http.Transport,
// for comparison.
func BenchmarkTransportBaseline(b *testing.B) {
	s := serve(b, nil)
	req, _ := http.NewRequest("GET", "http://"+s.addr+"/", nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
