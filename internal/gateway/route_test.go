package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestPredicates sends requests through a real gateway to a real backend and
// checks, for every predicate, one request that matches and one that does not.
func TestPredicates(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	farFuture := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)

	tests := []struct {
		name       string
		server     string   // extra server lines
		predicates []string // of the one route
		filters    []string
		req        func(r *http.Request)
		wantMatch  bool
		wantPath   string // path the backend saw, when matched; "" = the request's
	}{
		{name: "Path /api/** matches deep", predicates: []string{"Path=/api/**"}, req: path("/api/a/b"), wantMatch: true},
		{name: "Path /api/** matches /api", predicates: []string{"Path=/api/**"}, req: path("/api"), wantMatch: true},
		{name: "Path /api/** rejects /apix", predicates: []string{"Path=/api/**"}, req: path("/apix")},
		{name: "Path /users/{id} matches", predicates: []string{"Path=/users/{id}"}, req: path("/users/42"), wantMatch: true},
		{name: "Path /users/{id} rejects extra segment", predicates: []string{"Path=/users/{id}"}, req: path("/users/42/x")},
		{name: "Path several patterns second matches", predicates: []string{"Path=/a/**, /b/{x}, /c"}, req: path("/b/1"), wantMatch: true},
		{name: "Path several patterns third matches", predicates: []string{"Path=/a/**, /b/{x}, /c"}, req: path("/c"), wantMatch: true},
		{name: "Path several patterns none matches", predicates: []string{"Path=/a/**, /b/{x}, /c"}, req: path("/b/1/2")},
		{name: "Path variable reaches SetPath", predicates: []string{"Path=/users/{id}"}, filters: []string{"SetPath=/x/{id}"},
			req: path("/users/42"), wantMatch: true, wantPath: "/x/42"},
		{name: "Host wildcard matches", predicates: []string{"Host=*.example.com"}, req: host("api.example.com"), wantMatch: true},
		{name: "Host wildcard matches with port", predicates: []string{"Host=*.example.com"}, req: host("api.example.com:8080"), wantMatch: true},
		{name: "Host wildcard rejects apex", predicates: []string{"Host=*.example.com"}, req: host("example.com")},
		{name: "Host wildcard rejects other domain", predicates: []string{"Host=*.example.com"}, req: host("api.example.org")},
		{name: "Host variable reaches SetPath", predicates: []string{"Host={sub}.example.com"}, filters: []string{"SetPath=/tenant/{sub}"},
			req: host("acme.example.com"), wantMatch: true, wantPath: "/tenant/acme"},
		{name: "Method matches", predicates: []string{"Method=POST,PUT"}, req: method("PUT"), wantMatch: true},
		{name: "Method rejects", predicates: []string{"Method=POST,PUT"}, req: method("GET")},
		{name: "Header regexp matches", predicates: []string{`Header=X-Id, \d+`}, req: header("X-Id", "123"), wantMatch: true},
		{name: "Header regexp must match whole value", predicates: []string{`Header=X-Id, \d+`}, req: header("X-Id", "12a")},
		{name: "Header regexp absent header", predicates: []string{`Header=X-Id, \d+`}, req: header("X-Other", "1")},
		{name: "Header name only matches presence", predicates: []string{"Header=X-Flag"}, req: header("X-Flag", "anything"), wantMatch: true},
		{name: "Query regexp matches", predicates: []string{"Query=color, gre.*"}, req: path("/?color=green&size=1"), wantMatch: true},
		{name: "Query regexp rejects", predicates: []string{"Query=color, gre.*"}, req: path("/?color=red")},
		{name: "Query presence", predicates: []string{"Query=debug"}, req: path("/?a=1&debug"), wantMatch: true},
		{name: "Query absent", predicates: []string{"Query=debug"}, req: path("/?a=1")},
		{name: "Cookie matches", predicates: []string{"Cookie=session, ab.*"}, req: header("Cookie", "x=1; session=abc"), wantMatch: true},
		{name: "Cookie rejects", predicates: []string{"Cookie=session, ab.*"}, req: header("Cookie", "session=xyz")},
		{name: "RemoteAddr CIDR matches loopback", predicates: []string{"RemoteAddr=127.0.0.0/8"}, req: path("/"), wantMatch: true},
		{name: "RemoteAddr CIDR rejects", predicates: []string{"RemoteAddr=10.0.0.0/8, 192.168.0.1"}, req: path("/")},
		{name: "RemoteAddr ignores X-Forwarded-For", predicates: []string{"RemoteAddr=10.0.0.0/8"}, req: header("X-Forwarded-For", "10.1.1.1")},
		{name: "XForwardedRemoteAddr believes a trusted proxy", server: "trusted_proxies: [127.0.0.1/32]",
			predicates: []string{"XForwardedRemoteAddr=10.1.0.0/16"}, req: header("X-Forwarded-For", "10.1.2.3"), wantMatch: true},
		{name: "XForwardedRemoteAddr skips trusted hops from the right", server: "trusted_proxies: [127.0.0.1/32, 10.9.0.0/16]",
			predicates: []string{"XForwardedRemoteAddr=10.1.0.0/16"}, req: header("X-Forwarded-For", "10.1.2.3, 10.9.0.1"), wantMatch: true},
		{name: "XForwardedRemoteAddr takes the rightmost untrusted", server: "trusted_proxies: [127.0.0.1/32]",
			predicates: []string{"XForwardedRemoteAddr=10.1.0.0/16"}, req: header("X-Forwarded-For", "10.1.2.3, 172.16.0.1")},
		{name: "XForwardedRemoteAddr ignores an untrusted peer's header",
			predicates: []string{"XForwardedRemoteAddr=10.1.0.0/16"}, req: header("X-Forwarded-For", "10.1.2.3")},
		{name: "XForwardedRemoteAddr untrusted peer is the client", predicates: []string{"XForwardedRemoteAddr=127.0.0.1"},
			req: header("X-Forwarded-For", "10.1.2.3"), wantMatch: true},
		{name: "After past", predicates: []string{"After=" + past}, req: path("/"), wantMatch: true},
		{name: "After future", predicates: []string{"After=" + future}, req: path("/")},
		{name: "Before future", predicates: []string{"Before=" + future}, req: path("/"), wantMatch: true},
		{name: "Before past", predicates: []string{"Before=" + past}, req: path("/")},
		{name: "Between now", predicates: []string{"Between=" + past + ", " + future}, req: path("/"), wantMatch: true},
		{name: "Between later", predicates: []string{"Between=" + future + ", " + farFuture}, req: path("/")},
		{name: "all predicates must match", predicates: []string{"Path=/api/**", "Method=GET"}, req: chain(path("/api/x"), method("POST"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: http://`+be.Addr()+`
				    predicates: `+yamlList(tc.predicates)+`
				    filters: `+yamlList(tc.filters)+`
				`, gatewaytest.WithServer(tc.server))
			req, err := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/"), nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.req(req)
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if !tc.wantMatch {
				if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Sluice-Reason") != "no_route" {
					t.Fatalf("got %d %s %q, want 404 no_route", resp.StatusCode, resp.Header.Get("X-Sluice-Reason"), body)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "be" {
				t.Fatalf("got %d %q, want 200 from the backend", resp.StatusCode, body)
			}
			seen := gatewaytest.DecodeSeen(t, body)
			want := tc.wantPath
			if want == "" {
				want = req.URL.Path
			}
			if seen.Path != want {
				t.Errorf("backend saw path %q, want %q", seen.Path, want)
			}
		})
	}
}

func path(p string) func(*http.Request) {
	return func(r *http.Request) {
		u, _, _ := strings.Cut(p, "?")
		r.URL.Path = u
		r.URL.RawQuery = strings.TrimPrefix(strings.TrimPrefix(p, u), "?")
	}
}

func host(h string) func(*http.Request) { return func(r *http.Request) { r.Host = h } }

func method(m string) func(*http.Request) { return func(r *http.Request) { r.Method = m } }

func header(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }

func chain(fs ...func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		for _, f := range fs {
			f(r)
		}
	}
}

// yamlList renders ss as a YAML flow list of quoted strings.
func yamlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestWeight checks that a 80/20 weight group splits traffic roughly 80/20.
func TestWeight(t *testing.T) {
	t.Parallel()
	heavy := gatewaytest.NewEcho(t, "heavy")
	light := gatewaytest.NewEcho(t, "light")
	g := gatewaytest.Start(t, `
		routes:
		  - id: heavy
		    uri: http://`+heavy.Addr()+`
		    predicates: [Path=/w, "Weight=group1, 80"]
		  - id: light
		    uri: http://`+light.Addr()+`
		    predicates: [Path=/w, "Weight=group1, 20"]
		`)
	c := gatewaytest.Client(t)
	const n = 500
	for range n {
		req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/w"), nil)
		if resp, body := gatewaytest.Do(t, c, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	h, l := heavy.Hits(), light.Hits()
	if h+l != n {
		t.Fatalf("backends saw %d+%d requests, want %d", h, l, n)
	}
	// 80% of 500 = 400; the binomial standard deviation is about 9, so ±45 is 5σ.
	if h < 355 || h > 445 {
		t.Errorf("heavy got %d of %d requests, want about 400", h, n)
	}
}

// TestRouteOrder checks that order ranks routes, and that routes of equal
// order keep their declaration order.
func TestRouteOrder(t *testing.T) {
	t.Parallel()
	first := gatewaytest.NewEcho(t, "first")
	second := gatewaytest.NewEcho(t, "second")
	ranked := gatewaytest.NewEcho(t, "ranked")
	g := gatewaytest.Start(t, `
		routes:
		  - id: catch-all
		    uri: http://`+first.Addr()+`
		    predicates: [Path=/**]
		  - id: also-catch-all
		    uri: http://`+second.Addr()+`
		    predicates: [Path=/**]
		  - id: ranked
		    uri: http://`+ranked.Addr()+`
		    order: -1
		    predicates: [Path=/special]
		  - id: ranked-last
		    uri: http://`+second.Addr()+`
		    order: 5
		    predicates: [Path=/late]
		`)
	tests := []struct {
		name, path, wantBackend string
	}{
		{name: "lower order wins over earlier declaration", path: "/special", wantBackend: "ranked"},
		{name: "equal order keeps declaration order", path: "/anything", wantBackend: "first"},
		{name: "higher order loses to a catch-all", path: "/late", wantBackend: "first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := gatewaytest.Get(t, g, tc.path)
			if got := resp.Header.Get("X-Backend"); resp.StatusCode != http.StatusOK || got != tc.wantBackend {
				t.Errorf("GET %s: got %d from %q (%q), want 200 from %q", tc.path, resp.StatusCode, got, body, tc.wantBackend)
			}
		})
	}
}

// TestPathNormalisation checks that a request cannot reach a path no route
// allows by hiding dot segments or empty segments behind a route's prefix.
func TestPathNormalisation(t *testing.T) {
	t.Parallel()
	api := gatewaytest.NewEcho(t, "api")
	g := gatewaytest.Start(t, `
		routes:
		  - id: api
		    uri: http://`+api.Addr()+`
		    predicates: [Path=/api/**]
		`)
	tests := []struct {
		name     string
		target   string // request target, sent verbatim
		status   int
		reason   string
		wantPath string // what the backend sees when proxied
		wantURI  string // the request target the backend sees, if checked
	}{
		{name: "dot-dot escapes the prefix", target: "/api/../admin", status: 404, reason: "no_route"},
		{name: "double slash", target: "//admin", status: 404, reason: "no_route"},
		{name: "double slash inside the prefix is cleaned", target: "/api//x", status: 200, wantPath: "/api/x"},
		{name: "encoded dot-dot", target: "/api/%2e%2e/admin", status: 404, reason: "no_route"},
		{name: "encoded upper-case dot-dot", target: "/api/%2E%2E/admin", status: 404, reason: "no_route"},
		{name: "encoded slashes and dot-dot", target: "/api%2F..%2Fadmin", status: 404, reason: "no_route"},
		{name: "dot-dot with params", target: "/api/..;x/admin", status: 404, reason: "no_route"},
		{name: "dot-dot above the root", target: "/../../api/x", status: 200, wantPath: "/api/x"},
		{name: "dot segment inside the prefix", target: "/api/./x/../y", status: 200, wantPath: "/api/y"},
		{name: "NUL byte", target: "/api/a%00b", status: 400, reason: "bad_request"},
		{name: "encoded space and question mark stay encoded", target: "/api/a%20b%3Fc?q=1", status: 200, wantPath: "/api/a b?c", wantURI: "/api/a%20b%3Fc?q=1"},
		{name: "double encoding is decoded once", target: "/api/%252e%252e/x", status: 200, wantPath: "/api/%2e%2e/x", wantURI: "/api/%252e%252e/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := api.Hits()
			resp, body := gatewaytest.Raw(t, g.Addr(), "GET "+tc.target+" HTTP/1.1\nHost: example.com\nConnection: close\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: got %d %q, want %d", tc.target, resp.StatusCode, body, tc.status)
			}
			if tc.reason != "" {
				if got := resp.Header.Get("X-Sluice-Reason"); got != tc.reason {
					t.Errorf("reason %q, want %q", got, tc.reason)
				}
				// The subtests share one backend and run one at a time.
				if n := api.Hits() - before; n != 0 {
					t.Errorf("backend saw %d requests, want none", n)
				}
				return
			}
			seen := gatewaytest.DecodeSeen(t, body)
			if seen.Path != tc.wantPath {
				t.Errorf("backend saw %q, want %q", seen.Path, tc.wantPath)
			}
			if tc.wantURI != "" && seen.URI != tc.wantURI {
				t.Errorf("backend saw request target %q, want %q", seen.URI, tc.wantURI)
			}
		})
	}
	for _, s := range api.Seen() {
		if strings.Contains(s.URI, "admin") {
			t.Errorf("backend saw %q", s.URI)
		}
	}
}

// TestFilters runs each built-in filter end to end, after the default filters.
func TestFilters(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	tests := []struct {
		name       string
		predicates string
		filters    string
		path       string
		reqHeader  http.Header
		wantPath   string
		wantHeader http.Header // request headers the backend must see
		wantAbsent []string    // request headers the backend must not see
		wantResp   http.Header // response headers the client must see
		respAbsent []string    // response headers the client must not see
	}{
		{name: "StripPrefix", predicates: "[Path=/api/**]", filters: "[StripPrefix=1]", path: "/api/v1/x", wantPath: "/v1/x"},
		{name: "StripPrefix everything", predicates: "[Path=/api/**]", filters: "[StripPrefix=2]", path: "/api/v1", wantPath: "/"},
		{name: "PrefixPath", filters: "[PrefixPath=/base]", path: "/x", wantPath: "/base/x"},
		{name: "SetPath with two variables", predicates: `["Path=/u/{user}/p/{post}"]`, filters: `["SetPath=/posts/{post}/by/{user}"]`,
			path: "/u/ann/p/7", wantPath: "/posts/7/by/ann"},
		{name: "request headers", filters: `["AddRequestHeader=X-Add, a", "SetRequestHeader=X-Set, s", "RemoveRequestHeader=X-Secret"]`,
			path: "/", reqHeader: http.Header{"X-Set": {"client"}, "X-Secret": {"1"}, "X-Add": {"client"}},
			wantHeader: http.Header{"X-Add": {"client", "a"}, "X-Set": {"s"}}, wantAbsent: []string{"X-Secret"}},
		{name: "request header with a path variable", predicates: `["Path=/users/{id}"]`, filters: `["AddRequestHeader=X-User, u-{id}"]`,
			path: "/users/9", wantHeader: http.Header{"X-User": {"u-9"}}},
		{name: "response headers", filters: `["AddResponseHeader=X-Added, yes", "SetResponseHeader=Content-Type, text/x-test", "RemoveResponseHeader=X-Backend"]`,
			path: "/", wantResp: http.Header{"X-Added": {"yes"}, "Content-Type": {"text/x-test"}}, respAbsent: []string{"X-Backend"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			preds := tc.predicates
			if preds == "" {
				preds = "[]"
			}
			g := gatewaytest.Start(t, `
				default_filters: ["AddResponseHeader=X-Gateway, sluice"]
				routes:
				  - id: r
				    uri: http://`+be.Addr()+`
				    predicates: `+preds+`
				    filters: `+tc.filters+`
				`)
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, tc.path), nil)
			for k, v := range tc.reqHeader {
				req.Header[k] = v
			}
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			seen := gatewaytest.DecodeSeen(t, body)
			if tc.wantPath != "" && seen.Path != tc.wantPath {
				t.Errorf("backend saw path %q, want %q", seen.Path, tc.wantPath)
			}
			for k, want := range tc.wantHeader {
				if got := seen.Header[k]; !slices.Equal(got, want) {
					t.Errorf("backend saw %s: %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.wantAbsent {
				if v, ok := seen.Header[k]; ok {
					t.Errorf("backend saw %s: %q", k, v)
				}
			}
			if got := resp.Header.Get("X-Gateway"); got != "sluice" {
				t.Errorf("default filter: X-Gateway %q, want sluice", got)
			}
			for k, want := range tc.wantResp {
				if got := resp.Header[k]; !slices.Equal(got, want) {
					t.Errorf("client saw %s: %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.respAbsent {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("client saw %s: %q", k, v)
				}
			}
		})
	}
}
