package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/route"
)

// The handler's own allocations per proxied GET are four: the request's
// state (exchange, counters, outbound URL), the outbound request
// (Request.WithContext), the Forwarded element, and the request id with its
// traceparent. The chain ends in memory here (cannedBackend), so that the
// count is the handler's alone; BenchmarkRequestPath in internal/gateway
// runs the same path to a real backend through the pool.
func TestServeAllocations(t *testing.T) {
	h, backend := newCannedProxy(t)
	w := &discardWriter{h: http.Header{}}
	r := cannedRequest()
	serve := func() {
		clear(r.Header)
		r.Header["Accept"] = cannedAccept
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, r)
	}
	serve()
	if w.status != http.StatusOK || backend.got.Header.Get("X-Forwarded-For") != "192.0.2.1" {
		t.Fatalf("status %d, X-Forwarded-For %q", w.status, backend.got.Header.Get("X-Forwarded-For"))
	}
	if n := testing.AllocsPerRun(100, serve); n > 4 {
		t.Errorf("ServeHTTP allocates %v times per request, want at most 4", n)
	}
}

func newCannedProxy(t testing.TB) (*Handler, *cannedBackend) {
	f := route.Predicates()["Path"]
	a, err := (args.Spec{Name: "Path", Positional: []string{"/api/**"}}).Bind(f.Fields)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.New(a, &route.Env{RouteID: "api"})
	if err != nil {
		t.Fatal(err)
	}
	backend := &cannedBackend{resp: http.Response{StatusCode: 200, Header: http.Header{}}}
	tab, err := route.NewTable([]route.Route{{ID: "api", Upstream: "u", Predicates: []route.Predicate{p}, Chain: backend}})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{}
	h.SetTable(&Table{Match: tab, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	return h, backend
}

var cannedAccept = []string{"*/*"}

func cannedRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/api/hello", nil)
	r.RequestURI, r.Host, r.RemoteAddr = "/api/hello", "api.example.com", "192.0.2.1:50000"
	return r.WithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
}

// cannedBackend answers every request with the same small response,
// reset in place (clear keeps a map's storage).
type cannedBackend struct {
	resp http.Response
	body cannedBody
	got  *http.Request
}

type cannedBody struct{ strings.Reader }

func (*cannedBody) Close() error { return nil }

var cannedType = []string{"text/plain"}

func (b *cannedBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	b.got = r
	clear(b.resp.Header)
	b.resp.Header["Content-Type"] = cannedType
	b.body.Reset("hello")
	b.resp.Body, b.resp.ContentLength = &b.body, 5
	return &b.resp, nil
}

// discardWriter keeps the status and throws the body away.
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
