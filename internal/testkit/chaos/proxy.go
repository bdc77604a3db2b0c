package chaos

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
)

// A Proxy is the gateway under test.
type Proxy interface {
	// Name is how results and the CLI refer to the proxy.
	Name() string
	// Start runs the proxy in front of upstreams (host:port list, all of one
	// upstream group, balanced round robin) and returns the address clients
	// use. stop must end it and release everything it holds.
	Start(ctx context.Context, upstreams []string) (addr string, stop func(), err error)
}

// Endpoint is one upstream endpoint as service discovery reports it
// (Kubernetes EndpointSlice conditions).
type Endpoint struct {
	Addr        string
	Ready       bool
	Serving     bool
	Terminating bool
}

// An EndpointSetter is a Proxy whose running instances accept endpoint
// updates from discovery (scenario 8). Proxies without it skip scenario 8.
type EndpointSetter interface {
	// SetEndpoints replaces the endpoint set of the instance listening on
	// addr (as returned by Start).
	SetEndpoints(addr string, eps []Endpoint) error
}

// An H2CProxy is a Proxy that can speak HTTP/2 cleartext to its upstreams
// (scenario 9). Proxies without it skip scenario 9.
type H2CProxy interface {
	StartH2C(ctx context.Context, upstreams []string) (addr string, stop func(), err error)
}

// Baseline is the naive gateway the scenarios must show failing:
// httputil.ReverseProxy with a clone of Go's default Transport (default pool
// settings, no retries beyond the Transport's own) and round robin. It also
// implements EndpointSetter (dropping endpoints that are not ready, unless
// none is) and H2CProxy, so scenarios 8 and 9 have a reference too.
type Baseline struct {
	mu        sync.Mutex
	instances map[string]*baselineInstance
}

// Interface guards.
var (
	_ Proxy          = (*Baseline)(nil)
	_ EndpointSetter = (*Baseline)(nil)
	_ H2CProxy       = (*Baseline)(nil)
)

type baselineInstance struct {
	eps  atomic.Pointer[[]string]
	next atomic.Uint64
}

// Name is "baseline".
func (*Baseline) Name() string { return "baseline" }

// Start serves a ReverseProxy on 127.0.0.1.
func (b *Baseline) Start(ctx context.Context, upstreams []string) (string, func(), error) {
	return b.start(upstreams, false)
}

// StartH2C is Start with h2c (prior knowledge) to the upstreams.
func (b *Baseline) StartH2C(ctx context.Context, upstreams []string) (string, func(), error) {
	return b.start(upstreams, true)
}

func (b *Baseline) start(upstreams []string, h2c bool) (string, func(), error) {
	if len(upstreams) == 0 {
		return "", nil, errors.New("baseline: no upstreams")
	}
	inst := &baselineInstance{}
	eps := append([]string(nil), upstreams...)
	inst.eps.Store(&eps)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			eps := *inst.eps.Load()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = eps[int(inst.next.Add(1)-1)%len(eps)]
		},
		Transport: tr,
		ErrorLog:  discardLog,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: rp, ErrorLog: discardLog}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	addr := ln.Addr().String()
	b.mu.Lock()
	if b.instances == nil {
		b.instances = make(map[string]*baselineInstance)
	}
	b.instances[addr] = inst
	b.mu.Unlock()
	stop := func() {
		srv.Close()
		<-done
		tr.CloseIdleConnections()
		b.mu.Lock()
		delete(b.instances, addr)
		b.mu.Unlock()
	}
	return addr, stop, nil
}

// SetEndpoints makes new requests go to the ready endpoints, or to the
// serving ones if none is ready. Pooled conns are left alone, as a naive
// proxy does.
func (b *Baseline) SetEndpoints(addr string, eps []Endpoint) error {
	b.mu.Lock()
	inst := b.instances[addr]
	b.mu.Unlock()
	if inst == nil {
		return errors.New("baseline: no instance at " + addr)
	}
	var ready, serving []string
	for _, ep := range eps {
		if ep.Ready {
			ready = append(ready, ep.Addr)
		}
		if ep.Serving {
			serving = append(serving, ep.Addr)
		}
	}
	use := ready
	if len(use) == 0 {
		use = serving
	}
	if len(use) == 0 {
		return errors.New("baseline: no usable endpoint")
	}
	inst.eps.Store(&use)
	return nil
}

// ProxyFunc adapts a start function to Proxy, e.g. to run an in-process
// gateway in an integration test. To take part in scenarios 8 and 9, wrap
// it in a type that also implements EndpointSetter or H2CProxy.
type ProxyFunc struct {
	ProxyName string
	StartFunc func(ctx context.Context, upstreams []string) (addr string, stop func(), err error)
}

// Name is ProxyName.
func (f ProxyFunc) Name() string { return f.ProxyName }

// Start calls StartFunc.
func (f ProxyFunc) Start(ctx context.Context, upstreams []string) (string, func(), error) {
	return f.StartFunc(ctx, upstreams)
}
