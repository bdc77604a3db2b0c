package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/route"
)

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		name        string
		in          http.Header
		want        http.Header
		wantUpgrade string
	}{
		{
			name: "keep-alive response",
			in:   http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Content-Type": {"text/plain"}},
			want: http.Header{"Content-Type": {"text/plain"}},
		},
		{
			name: "headers named by Connection, any case and spacing",
			in:   http.Header{"Connection": {"x-private ,  X-Other", "close"}, "X-Private": {"1"}, "X-Other": {"2"}, "X-Kept": {"3"}},
			want: http.Header{"X-Kept": {"3"}},
		},
		{
			name: "te trailers kept for gRPC",
			in:   http.Header{"Connection": {"TE"}, "Te": {"trailers"}},
			want: http.Header{"Te": {"trailers"}},
		},
		{
			name:        "upgrade reported",
			in:          http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Proxy-Authorization": {"x"}},
			want:        http.Header{},
			wantUpgrade: "websocket",
		},
		{
			name: "empty tokens ignored",
			in:   http.Header{"Connection": {",, ,"}, "A": {"1"}},
			want: http.Header{"A": {"1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := removeHopByHop(tc.in)
			if up != tc.wantUpgrade {
				t.Errorf("upgrade = %q, want %q", up, tc.wantUpgrade)
			}
			if !reflect.DeepEqual(tc.in, tc.want) {
				t.Errorf("headers = %v, want %v", tc.in, tc.want)
			}
		})
	}
}

func TestForwarded(t *testing.T) {
	trustedNets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name       string
		peer       string
		host       string
		in         http.Header
		trusted    bool
		want       http.Header
		wantClient string
	}{
		{
			name: "untrusted peer: client values replaced",
			peer: "192.0.2.1", host: "api.example.com",
			in: http.Header{"X-Forwarded-For": {"6.6.6.6"}, "Forwarded": {"for=6.6.6.6"}, "X-Forwarded-Port": {"1"}},
			want: http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"api.example.com"},
				"X-Forwarded-Port": {"8080"}, "Forwarded": {"for=192.0.2.1;host=api.example.com;proto=http"}},
			wantClient: "192.0.2.1",
		},
		{
			name: "trusted peer: chain extended, client from the right",
			peer: "10.0.0.2", host: "api.example.com:8080", trusted: true,
			in: http.Header{"X-Forwarded-For": {"198.51.100.7, 10.0.0.9"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=198.51.100.7"}},
			want: http.Header{"X-Forwarded-For": {"198.51.100.7, 10.0.0.9, 10.0.0.2"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"api.example.com:8080"}, "X-Forwarded-Port": {"8080"},
				"Forwarded": {`for=198.51.100.7, for=10.0.0.2;host="api.example.com:8080";proto=http`}},
			wantClient: "198.51.100.7",
		},
		{
			name: "IPv6 peer quoted in brackets",
			peer: "2001:db8::1", host: `we"ird`,
			in: http.Header{},
			want: http.Header{"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {`we"ird`},
				"X-Forwarded-Port": {"8080"}, "Forwarded": {`for="[2001:db8::1]";host="we\"ird";proto=http`}},
			wantClient: "2001:db8::1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = tc.host
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
			client := forwarded(tc.in, r, &exchange.Exchange{}, netip.MustParseAddr(tc.peer), tc.trusted, trustedNets)
			if client.String() != tc.wantClient {
				t.Errorf("client = %v, want %s", client, tc.wantClient)
			}
			if !reflect.DeepEqual(tc.in, tc.want) {
				t.Errorf("headers =\n%v\nwant\n%v", tc.in, tc.want)
			}
			// Values share a backing array: appending to one must not touch another.
			tc.in["X-Forwarded-For"] = append(tc.in["X-Forwarded-For"], "extra")
			if got := tc.in["X-Forwarded-Proto"]; !reflect.DeepEqual(got, tc.want["X-Forwarded-Proto"]) {
				t.Errorf("append to X-Forwarded-For changed X-Forwarded-Proto to %v", got)
			}
		})
	}
}

// The per-request header work allocates only the Forwarded element (the
// peer's address is the text of RemoteAddr, the value slices are the
// exchange's); removing hop-by-hop headers from a keep-alive response
// allocates nothing.
func TestHeaderAllocations(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Host, r.RemoteAddr = "127.0.0.1:8080", "127.0.0.1:50000"
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
	peer := netip.MustParseAddr("127.0.0.1")
	h := http.Header{}
	ex := new(exchange.Exchange)
	if n := testing.AllocsPerRun(100, func() {
		clear(h)
		*ex = exchange.Exchange{}
		forwarded(h, r, ex, peer, false, nil)
	}); n > 1 {
		t.Errorf("forwarded: %v allocations, want at most 1", n)
	}
	if got := h["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	resp := http.Header{"Content-Type": {"text/plain"}}
	conn, ka := []string{"keep-alive"}, []string{"timeout=5"}
	if n := testing.AllocsPerRun(100, func() {
		resp["Connection"], resp["Keep-Alive"] = conn, ka
		removeHopByHop(resp)
	}); n != 0 {
		t.Errorf("removeHopByHop: %v allocations, want none", n)
	}
}

// Route matching allocates nothing when the route has no variables.
func TestMatchAllocations(t *testing.T) {
	f := route.Predicates()["Path"]
	a, err := (args.Spec{Name: "Path", Positional: []string{"/api/**"}}).Bind(f.Fields)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.New(a, &route.Env{RouteID: "api"})
	if err != nil {
		t.Fatal(err)
	}
	table, err := route.NewTable([]route.Route{{ID: "api", Predicates: []route.Predicate{p}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/hello", nil)
	ex := &exchange.Exchange{}
	if rt, path, ok, err := match(table, r, ex); !ok || err != nil || rt.ID != "api" || path != "/api/hello" {
		t.Fatalf("match = %v, %q, %v, %v", rt, path, ok, err)
	}
	if n := testing.AllocsPerRun(100, func() { match(table, r, ex) }); n != 0 {
		t.Errorf("match: %v allocations, want 0", n)
	}
}

// BenchmarkOutboundHeaders is the proxy's own header work on one request
// and its response: hop-by-hop headers removed both ways and
// X-Forwarded-*/Forwarded set, for a client and behind a trusted proxy.
//
//	go test -run '^$' -bench OutboundHeaders -benchmem ./internal/proxy
func BenchmarkOutboundHeaders(b *testing.B) {
	trustedNets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, remote string
		trusted      bool
	}{
		{"client", "192.0.2.1:50000", false},
		{"trusted-proxy", "10.0.0.2:50000", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Host, r.RemoteAddr = "api.example.com", tc.remote
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
			peer := netip.MustParseAddrPort(tc.remote).Addr()
			req, resp := http.Header{}, http.Header{}
			accept, keepAlive, xff := []string{"*/*"}, []string{"keep-alive"}, []string{"198.51.100.7"}
			ctype, timeout := []string{"text/plain"}, []string{"timeout=5"}
			ex := new(exchange.Exchange)
			b.ReportAllocs()
			for b.Loop() {
				clear(req)
				req["Accept"], req["Connection"], req["X-Forwarded-For"] = accept, keepAlive, xff
				*ex = exchange.Exchange{}
				removeHopByHop(req)
				forwarded(req, r, ex, peer, tc.trusted, trustedNets)
				clear(resp)
				resp["Content-Type"], resp["Connection"], resp["Keep-Alive"] = ctype, keepAlive, timeout
				removeHopByHop(resp)
			}
		})
	}
}
