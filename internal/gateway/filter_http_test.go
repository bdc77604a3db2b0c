package gateway_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestFilterLocalResponseCache checks what is cached and what is not: only
// bodiless GETs with cacheable statuses, honouring Cache-Control, Vary, the
// time to live and the size bound.
func TestFilterLocalResponseCache(t *testing.T) {
	t.Parallel()
	// The backend answers with a counter, so a cached answer is recognisable.
	var n atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for _, h := range r.Header.Values("X-Reply-Header") {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		if s := r.URL.Query().Get("status"); s != "" {
			code, _ := strconv.Atoi(s)
			w.WriteHeader(code)
		}
		w.Write([]byte(strconv.FormatInt(n.Add(1), 10) + strings.Repeat(".", len(r.URL.Query().Get("pad")))))
	}))
	t.Cleanup(be.Close)
	type req struct {
		method, path, host string
		header             http.Header
		body               string
	}
	tests := []struct {
		name    string
		filter  string
		first   req
		sleep   time.Duration
		second  req
		cached  bool // the second answer is the first one's
		wantAge bool
	}{
		{name: "GET is cached", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a"}, second: req{path: "/a"}, cached: true, wantAge: true},
		{name: "host is part of the key", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a", host: "a.example"}, second: req{path: "/a", host: "b.example"}},
		{name: "same host is cached", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a", host: "a.example"}, second: req{path: "/a", host: "a.example"}, cached: true},
		{name: "query is part of the key", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a?x=1"}, second: req{path: "/a?x=2"}},
		{name: "POST is not cached", filter: "LocalResponseCache=1m,1MB", first: req{method: "POST", path: "/a"}, second: req{method: "POST", path: "/a"}},
		{name: "GET with a body is not cached", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a", body: "x"}, second: req{path: "/a", body: "x"}},
		{name: "response no-store is not cached", filter: "LocalResponseCache=1m,1MB",
			first: req{path: "/a", header: http.Header{"X-Reply-Header": {"Cache-Control: no-store"}}}, second: req{path: "/a"}},
		{name: "response private is not cached", filter: "LocalResponseCache=1m,1MB",
			first: req{path: "/a", header: http.Header{"X-Reply-Header": {"Cache-Control: private, max-age=60"}}}, second: req{path: "/a"}},
		{name: "request no-store is not cached", filter: "LocalResponseCache=1m,1MB",
			first: req{path: "/a", header: http.Header{"Cache-Control": {"no-store"}}}, second: req{path: "/a"}},
		{name: "request no-cache skips the cache", filter: "LocalResponseCache=1m,1MB",
			first: req{path: "/a"}, second: req{path: "/a", header: http.Header{"Cache-Control": {"no-cache"}}}},
		{name: "404 is not cached", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a?status=404"}, second: req{path: "/a?status=404"}},
		{name: "301 is cached", filter: "LocalResponseCache=1m,1MB", first: req{path: "/a?status=301"}, second: req{path: "/a?status=301"}, cached: true},
		{name: "time to live expires", filter: "LocalResponseCache=200ms,1MB", first: req{path: "/a"}, sleep: 300 * time.Millisecond, second: req{path: "/a"}},
		{name: "a shorter max-age wins", filter: "LocalResponseCache=1m,1MB",
			first: req{path: "/a", header: http.Header{"X-Reply-Header": {"Cache-Control: max-age=0"}}}, second: req{path: "/a"}},
		{name: "larger than size is not cached", filter: "LocalResponseCache=1m,1KB", first: req{path: "/a?pad=" + strings.Repeat("p", 2000)},
			second: req{path: "/a?pad=" + strings.Repeat("p", 2000)}},
		{name: "Vary keys on the request header", filter: "LocalResponseCache=1m,1MB",
			first:  req{path: "/a", header: http.Header{"X-Reply-Header": {"Vary: Accept-Language"}, "Accept-Language": {"en"}}},
			second: req{path: "/a", header: http.Header{"Accept-Language": {"fr"}}}},
		{name: "Vary same value is cached", filter: "LocalResponseCache=1m,1MB",
			first:  req{path: "/a", header: http.Header{"X-Reply-Header": {"Vary: Accept-Language"}, "Accept-Language": {"en"}}},
			second: req{path: "/a", header: http.Header{"Accept-Language": {"en"}}}, cached: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: `+be.URL+`
				    filters: ["`+tc.filter+`"]
				`)
			c := gatewaytest.Client(t)
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			do := func(r req) (*http.Response, string) {
				m := r.method
				if m == "" {
					m = http.MethodGet
				}
				var body io.Reader
				if r.body != "" {
					body = strings.NewReader(r.body)
				}
				hr, _ := http.NewRequest(m, gatewaytest.URL(g, r.path), body)
				if r.host != "" {
					hr.Host = r.host
				}
				for k, v := range r.header {
					hr.Header[k] = v
				}
				resp, b := gatewaytest.Do(t, c, hr)
				return resp, string(b)
			}
			_, a := do(tc.first)
			time.Sleep(tc.sleep)
			resp, b := do(tc.second)
			if got := a == b; got != tc.cached {
				t.Errorf("first %q, second %q: cached %v, want %v", a, b, got, tc.cached)
			}
			if tc.wantAge && resp.Header.Get("Age") == "" {
				t.Errorf("a cached answer without Age: %v", resp.Header)
			}
			if tc.cached && !strings.HasPrefix(resp.Header.Get("Cache-Control"), "max-age=") {
				t.Errorf("cached answer Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestFilterCORS checks preflights answered by the gateway and the headers
// of actual requests, for the global block and the per-route filter.
func TestFilterCORS(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		cors:
		  "/api/**":
		    allowed_origins: ["https://a.example"]
		    allowed_origin_patterns: ["https://*.b.example:[8443,9443]"]
		    allowed_methods: [GET, POST]
		    allowed_headers: [X-Token, Content-Type]
		    exposed_headers: [X-Backend]
		    allow_credentials: true
		    max_age: 30m
		  "/**":
		    allowed_origins: ["*"]
		routes:
		  - id: api
		    uri: http://`+be.Addr()+`
		    predicates: [Path=/api/**]
		  - id: own
		    uri: http://`+be.Addr()+`
		    predicates: [Path=/own/**]
		    filters: [{name: Cors, args: {allowed_origins: [https://own.example], allowed_methods: ["*"], allowed_headers: ["*"], max_age: 60}}]
		  - id: rest
		    uri: http://`+be.Addr()+`
		    predicates: [Path=/**]
		`)
	tests := []struct {
		name       string
		method     string
		path       string
		header     http.Header
		wantStatus int
		want       map[string]string // response headers; "" = absent
		backend    bool              // the backend answered
	}{
		{name: "preflight allowed", method: "OPTIONS", path: "/api/x",
			header:     http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"x-token, content-type"}},
			wantStatus: 200, want: map[string]string{"Access-Control-Allow-Origin": "https://a.example", "Access-Control-Allow-Methods": "GET,POST",
				"Access-Control-Allow-Headers": "x-token, content-type", "Access-Control-Allow-Credentials": "true", "Access-Control-Max-Age": "1800", "X-Backend": ""}},
		{name: "preflight from a pattern origin and port", method: "OPTIONS", path: "/api/x",
			header:     http.Header{"Origin": {"https://app.b.example:9443"}, "Access-Control-Request-Method": {"GET"}},
			wantStatus: 200, want: map[string]string{"Access-Control-Allow-Origin": "https://app.b.example:9443", "Access-Control-Allow-Headers": ""}},
		{name: "preflight pattern with another port is refused", method: "OPTIONS", path: "/api/x",
			header:     http.Header{"Origin": {"https://app.b.example:8080"}, "Access-Control-Request-Method": {"GET"}},
			wantStatus: 403, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "preflight method not allowed", method: "OPTIONS", path: "/api/x",
			header:     http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"DELETE"}},
			wantStatus: 403},
		{name: "preflight header not allowed", method: "OPTIONS", path: "/api/x",
			header:     http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"X-Other"}},
			wantStatus: 403},
		{name: "actual request gets CORS headers", method: "GET", path: "/api/x", header: http.Header{"Origin": {"https://a.example"}},
			wantStatus: 200, backend: true, want: map[string]string{"Access-Control-Allow-Origin": "https://a.example",
				"Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Backend", "Vary": "Origin"}},
		{name: "actual request from another origin is refused", method: "GET", path: "/api/x", header: http.Header{"Origin": {"https://evil.example"}},
			wantStatus: 403},
		{name: "same origin is not CORS", method: "GET", path: "/api/x", header: http.Header{"Origin": {"http://" + g.Addr()}},
			wantStatus: 200, backend: true, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "no Origin is not CORS", method: "GET", path: "/api/x", wantStatus: 200, backend: true, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "second pattern: any origin, default methods", method: "OPTIONS", path: "/other",
			header: http.Header{"Origin": {"https://z.example"}, "Access-Control-Request-Method": {"HEAD"}}, wantStatus: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET,HEAD", "Access-Control-Allow-Credentials": ""}},
		{name: "second pattern: POST not in the default methods", method: "OPTIONS", path: "/other",
			header: http.Header{"Origin": {"https://z.example"}, "Access-Control-Request-Method": {"POST"}}, wantStatus: 403},
		{name: "route filter replaces the global policy", method: "OPTIONS", path: "/own/x",
			header: http.Header{"Origin": {"https://z.example"}, "Access-Control-Request-Method": {"GET"}}, wantStatus: 403},
		{name: "route filter: any method and header echoed", method: "OPTIONS", path: "/own/x",
			header:     http.Header{"Origin": {"https://own.example"}, "Access-Control-Request-Method": {"PATCH"}, "Access-Control-Request-Headers": {"X-Any"}},
			wantStatus: 200, want: map[string]string{"Access-Control-Allow-Methods": "PATCH", "Access-Control-Allow-Headers": "X-Any", "Access-Control-Max-Age": "60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tc.method, gatewaytest.URL(g, tc.path), nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if got := resp.Header.Get("X-Backend"); (got == "be") != tc.backend {
				t.Errorf("X-Backend %q: backend answered %v, want %v", got, got == "be", tc.backend)
			}
			for k, want := range tc.want {
				if got := strings.Join(resp.Header.Values(k), ", "); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestFilterCompression checks when responses are gzipped: globally and
// per route, by Accept-Encoding, size, type, existing encodings and SSE.
func TestFilterCompression(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", q.Get("type"))
		if e := q.Get("enc"); e != "" {
			w.Header().Set("Content-Encoding", e)
		}
		size, _ := strconv.Atoi(q.Get("size"))
		body := strings.Repeat("a", size)
		if q.Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(be.Close)
	g := gatewaytest.Start(t, `
		compression: {enabled: true, min_size: 1KiB}
		routes:
		  - id: own
		    uri: `+be.URL+`
		    predicates: [Path=/own/**]
		    filters: ["Compression=10B,image/svg+xml"]
		  - id: rest
		    uri: `+be.URL+`
		`)
	tests := []struct {
		name   string
		path   string
		accept string
		want   bool // gzipped
		size   int
	}{
		{name: "JSON above min size", path: "/x?type=application/json&size=2000", accept: "gzip", want: true, size: 2000},
		{name: "with charset and q-values", path: "/x?type=text/html%3Bcharset=utf-8&size=2000", accept: "br;q=1.0, gzip;q=0.5", want: true, size: 2000},
		{name: "unknown length is compressed", path: "/x?type=text/plain&size=3000&chunked=1", accept: "gzip", want: true, size: 3000},
		{name: "client does not accept gzip", path: "/x?type=application/json&size=2000", accept: "br", size: 2000},
		{name: "gzip;q=0 refuses", path: "/x?type=application/json&size=2000", accept: "gzip;q=0", size: 2000},
		{name: "below min size", path: "/x?type=application/json&size=1000", accept: "gzip", size: 1000},
		{name: "type not listed", path: "/x?type=image/png&size=2000", accept: "gzip", size: 2000},
		{name: "already encoded", path: "/x?type=application/json&size=2000&enc=br", accept: "gzip", size: 2000},
		{name: "event stream never", path: "/x?type=text/event-stream&size=2000&chunked=1", accept: "gzip", size: 2000},
		{name: "route filter: its own type and size", path: "/own/x?type=image/svg%2Bxml&size=20", accept: "gzip", want: true, size: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, tc.path), nil)
			req.Header.Set("Accept-Encoding", tc.accept)
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			gz := resp.Header.Get("Content-Encoding") == "gzip"
			if gz != tc.want {
				t.Fatalf("gzipped %v, want %v (headers %v)", gz, tc.want, resp.Header)
			}
			if gz {
				zr, err := gzip.NewReader(strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				body = plain
				if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
					t.Errorf("Vary %q", resp.Header.Get("Vary"))
				}
			}
			if len(body) != tc.size {
				t.Errorf("body of %d bytes, want %d", len(body), tc.size)
			}
		})
	}
}

// TestFilterArgumentsValidated checks that bad filter arguments are
// reported as FILE:LINE:COL: path: message, as sluice validate prints them.
func TestFilterArgumentsValidated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{name: "RewritePath unknown group", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters: ['RewritePath=/(?<seg>.*), /$\\{nope}']\n",
			want: `test.yaml:4:15: routes[0].filters[0]: RewritePath: replacement "/$\\{nope}": no group named "nope"`},
		{name: "RedirectTo not 3xx", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - RedirectTo=200, https://a\n",
			want: `test.yaml:5:9: routes[0].filters[0]: RedirectTo: status: must be a 3xx redirection, got 200`},
		{name: "DedupeResponseHeader strategy", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - DedupeResponseHeader=Vary, RETAIN_SOME\n",
			want: `test.yaml:5:9: routes[0].filters[0]: DedupeResponseHeader: strategy: "RETAIN_SOME" is not RETAIN_FIRST, RETAIN_LAST or RETAIN_UNIQUE`},
		{name: "Retry too many", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - Retry=20\n",
			want: `test.yaml:5:9: routes[0].filters[0]: Retry: retries: must be between 0 and 9, got 20`},
		{name: "CircuitBreaker bad fallback", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - {name: CircuitBreaker, args: {fallbackUri: 'ftp://x'}}\n",
			want: `test.yaml:5:9: routes[0].filters[0]: CircuitBreaker: fallbackUri: "ftp://x" is neither forward:/path nor an http(s) URL`},
		{name: "CircuitBreaker forward to no route", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    predicates: [Path=/api/**]\n    filters:\n      - CircuitBreaker=cb,forward:/fallback\n" +
			"  - id: other\n    uri: http://127.0.0.1:1\n    predicates: [Path=/fallbacks/**]\n",
			want: `test.yaml:6:9: routes[0].filters[0]: CircuitBreaker: fallbackUri "forward:/fallback": no route serves /fallback, so every fallback would answer 404`},
		{name: "RequestSize bad size", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - RequestSize=5XB\n",
			want: `test.yaml:5:9: routes[0].filters[0]: RequestSize: maxSize: "5XB" is not a size (like 5000, 1000B, 64KB or 5MB)`},
		{name: "SecureHeaders unknown header", config: "default_filters:\n  - {name: SecureHeaders, args: {disable: [x-nope]}}\nroutes: []\n",
			want: `test.yaml:2:5: default_filters[0]: SecureHeaders: disable: "x-nope" is not one of the secure headers`},
		{name: "Cors star with credentials", config: "routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n      - {name: Cors, args: {allowed_origins: ['*'], allow_credentials: true}}\n",
			want: `test.yaml:5:9: routes[0].filters[0]: Cors: allowed_origins: cannot contain "*" when allow_credentials is true`},
		{name: "global cors star with credentials", config: "cors:\n  /api/**: {allowed_origins: ['*'], allow_credentials: true}\nroutes: []\n",
			want: `test.yaml:2:3: cors./api/**: allowed_origins: cannot contain "*" when allow_credentials is true`},
		{name: "global cors bad pattern", config: "cors:\n  /api/{: {allowed_origins: ['*']}\nroutes: []\n",
			want: `test.yaml:2:3: cors./api/{: path pattern "/api/{"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("test.yaml", []byte(tc.config))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			errs := gateway.CheckDefinitions(cfg)
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Fatalf("got %v\nwant one error starting %q", errs, tc.want)
			}
		})
	}
}
