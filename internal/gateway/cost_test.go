package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/metrics"
	"github.com/sluice-gw/sluice/internal/proxy"
)

// costGateway is the gateway's request path in process, without its
// listener: the listener's handler (request counter, Keep-Alive hint, body
// limits), the proxy (route match among 20 routes, filter chain, metrics,
// access log to io.Discard) and the cluster and pool, forwarding to a real
// net/http backend on 127.0.0.1.
type costGateway struct {
	h   http.Handler
	req *http.Request
	w   *discardWriter
}

func newCostGateway(b *testing.B, filters string) *costGateway {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello"))
	})}
	go backend.Serve(ln)
	b.Cleanup(func() { backend.Close() })

	var routes strings.Builder
	for i := range 19 {
		fmt.Fprintf(&routes, "  - id: svc%d\n    uri: lb://backend\n    predicates: [\"Path=/svc%d/**\"]\n", i, i)
	}
	yaml := "server:\n  listen: 127.0.0.1:0\nlog:\n  access_log: true\n" +
		"upstreams:\n  backend:\n    endpoints: [\"" + ln.Addr().String() + "\"]\n" +
		"routes:\n" + routes.String() +
		"  - id: api\n    uri: lb://backend\n    predicates: [\"Path=/api/**\", \"Method=GET,POST\"]\n" +
		"    filters: [\"StripPrefix=1\"" + filters + "]\n"
	cfg, err := config.Parse("cost.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := Build(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { Retire(rt, &Runtime{}) })
	m := metrics.New()
	p := &proxy.Handler{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Observer: m}
	if err := p.SetAccessLog(cfg.Log.AccessLog, cfg.Log.AccessFields, cfg.Log.AccessSample2xx); err != nil {
		b.Fatal(err)
	}
	p.SetTable(rt.Table)

	req, _ := http.NewRequest(http.MethodGet, "/api/hello", nil)
	req.RequestURI, req.Host, req.RemoteAddr = "/api/hello", "gw.example.com", "127.0.0.1:50000"
	// Cancellable, as a served request's context is: the pool registers
	// its abort with it.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
	b.Cleanup(cancel)
	req = req.WithContext(ctx)
	return &costGateway{h: newListenerHandler(p, m, cfg.Server.Primary()), req: req, w: &discardWriter{h: http.Header{}}}
}

var (
	costAccept = []string{"*/*"}
	costAgent  = []string{"bench/1"}
	costType   = []string{"application/octet-stream"}
)

// serve sends one request with body (nil: a GET), its headers reset as a
// client sends them without allocating (clear keeps a map's storage).
func (g *costGateway) serve(b *testing.B, body *costBody) {
	r := g.req
	clear(r.Header)
	r.Header["Accept"], r.Header["User-Agent"] = costAccept, costAgent
	r.Method, r.Body, r.ContentLength = http.MethodGet, http.NoBody, 0
	if body != nil {
		body.Seek(0, io.SeekStart)
		r.Method, r.Body, r.ContentLength = http.MethodPost, body, body.Size()
		r.Header["Content-Type"] = costType
	}
	clear(g.w.h)
	g.w.status = 0
	g.h.ServeHTTP(g.w, r)
	if g.w.status != http.StatusOK {
		b.Fatalf("status %d", g.w.status)
	}
}

// costBody is a request body that can be sent again (Seek to its start).
type costBody struct{ *bytes.Reader }

func (costBody) Close() error { return nil }

// discardWriter is the client's side of the benchmark: a ResponseWriter
// that keeps the status and throws the body away.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// BenchmarkRequestPath is one request through the gateway's whole request
// path in process (costGateway): a small GET, a 1 KiB POST, and a GET
// through the common header filters.
//
//	go test -run '^$' -bench RequestPath -benchmem ./internal/gateway
func BenchmarkRequestPath(b *testing.B) {
	headerFilters := `, "AddRequestHeader=X-Gateway, sluice", "SetRequestHeader=X-Tenant, acme", "RemoveRequestHeader=Cookie",` +
		` "AddResponseHeader=X-Served-By, sluice", "SetResponseHeader=Cache-Control, no-store", "RemoveResponseHeader=Server", "SecureHeaders"`
	cases := []struct {
		name    string
		filters string
		body    int
	}{
		{"GET", "", -1},
		{"POST-1KiB", "", 1024},
		{"GET-header-filters", headerFilters, -1},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			g := newCostGateway(b, tc.filters)
			var body *costBody
			if tc.body >= 0 {
				body = &costBody{bytes.NewReader(bytes.Repeat([]byte("x"), tc.body))}
			}
			g.serve(b, body) // the pool's connection is made
			b.ReportAllocs()
			for b.Loop() {
				g.serve(b, body)
			}
		})
	}
}
