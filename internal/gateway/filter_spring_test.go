package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// replyBackend answers like an Echo backend (a JSON gatewaytest.Seen), but
// the request shapes the answer: X-Reply-Status, X-Reply-Type, X-Reply-Body,
// and X-Reply-Header ("Name: value", one header line per value).
type replyBackend struct {
	*httptest.Server
	hits  atomic.Int64
	cases sync.Map // X-Case values seen
}

func newReplyBackend(t *testing.T) *replyBackend {
	b := &replyBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.cases.Store(r.Header.Get("X-Case"), true)
		body, _ := io.ReadAll(r.Body)
		for _, h := range r.Header.Values("X-Reply-Header") {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		out := []byte(r.Header.Get("X-Reply-Body"))
		if len(out) == 0 {
			w.Header().Set("Content-Type", "application/json")
			out, _ = json.Marshal(gatewaytest.Seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Host: r.Host,
				Header: r.Header, Length: r.ContentLength, BodyLen: int64(len(body)), BodySHA256: string(body)})
		}
		if ct := r.Header.Get("X-Reply-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		status := http.StatusOK
		if s := r.Header.Get("X-Reply-Status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
		w.Write(out)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *replyBackend) Addr() string { return b.Listener.Addr().String() }

// filterCase is one request through one route with the filters under test.
type filterCase struct {
	name       string
	predicates string // YAML flow list; default []
	filters    string // YAML flow list
	method     string
	path       string
	host       string
	header     http.Header
	body       string
	chunked    bool // send the body without a Content-Length

	wantStatus int         // default 200
	wantURI    string      // request target the backend saw
	wantSeen   http.Header // request headers the backend saw (exact values)
	seenAbsent []string
	seenBody   string      // body the backend saw (when set)
	wantResp   http.Header // response headers the client saw (exact values)
	respAbsent []string
	wantBody   string // exact response body (when set)
	noBackend  bool   // the backend must not be reached
}

func runFilterCases(t *testing.T, tests []filterCase) {
	t.Helper()
	be := newReplyBackend(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			preds := tc.predicates
			if preds == "" {
				preds = "[]"
			}
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: http://`+be.Addr()+`
				    predicates: `+preds+`
				    filters: `+tc.filters+`
				`)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body)
				}
			}
			req, err := http.NewRequest(method, gatewaytest.URL(g, tc.path), body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			caseID := req.Header.Get("X-Case")
			if caseID == "" {
				caseID = tc.name
				req.Header.Set("X-Case", caseID)
			}
			c := gatewaytest.Client(t)
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, got := gatewaytest.Do(t, c, req)
			want := tc.wantStatus
			if want == 0 {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, want, got)
			}
			if _, reached := be.cases.Load(caseID); tc.noBackend && reached {
				t.Errorf("the backend was reached")
			}
			if tc.wantURI != "" || tc.wantSeen != nil || tc.seenAbsent != nil || tc.seenBody != "" {
				seen := gatewaytest.DecodeSeen(t, got)
				if tc.wantURI != "" && seen.URI != tc.wantURI {
					t.Errorf("backend saw %q, want %q", seen.URI, tc.wantURI)
				}
				for k, want := range tc.wantSeen {
					if v := seen.Header[k]; !slices.Equal(v, want) {
						t.Errorf("backend saw %s: %q, want %q", k, v, want)
					}
				}
				for _, k := range tc.seenAbsent {
					if v, ok := seen.Header[k]; ok {
						t.Errorf("backend saw %s: %q", k, v)
					}
				}
				if tc.seenBody != "" && seen.BodySHA256 != tc.seenBody {
					t.Errorf("backend saw body %q, want %q", seen.BodySHA256, tc.seenBody)
				}
			}
			for k, want := range tc.wantResp {
				if v := resp.Header[k]; !slices.Equal(v, want) {
					t.Errorf("client saw %s: %q, want %q", k, v, want)
				}
			}
			for _, k := range tc.respAbsent {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("client saw %s: %q", k, v)
				}
			}
			if tc.wantBody != "" && string(got) != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
		})
	}
}

func reply(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// TestFilterRequestSide covers the filters that edit the request: headers,
// query, path, and size limits, with the edge cases of Spring's docs.
func TestFilterRequestSide(t *testing.T) {
	t.Parallel()
	runFilterCases(t, []filterCase{
		{name: "AddRequestHeadersIfNotPresent adds absent headers", filters: `["AddRequestHeadersIfNotPresent=X-Request-Color-1:blue,X-Request-Color-2:green"]`,
			path: "/", wantSeen: reply("X-Request-Color-1", "blue", "X-Request-Color-2", "green")},
		{name: "AddRequestHeadersIfNotPresent keeps a present header", filters: `["AddRequestHeadersIfNotPresent=X-Request-Color-1:blue,X-Request-Color-2:green"]`,
			path: "/", header: reply("X-Request-Color-1", "red"), wantSeen: reply("X-Request-Color-1", "red", "X-Request-Color-2", "green")},
		{name: "AddRequestHeadersIfNotPresent same name twice adds both", filters: `["AddRequestHeadersIfNotPresent=X-Multi:a,X-Multi:b"]`,
			path: "/", wantSeen: reply("X-Multi", "a", "X-Multi", "b")},
		{name: "AddRequestHeadersIfNotPresent with a path variable", predicates: `["Path=/red/{segment}"]`,
			filters: `["AddRequestHeadersIfNotPresent=X-Request-Red:Blue-{segment}"]`, path: "/red/7", wantSeen: reply("X-Request-Red", "Blue-7")},
		{name: "MapRequestHeader copies", filters: `["MapRequestHeader=Blue, X-Request-Red"]`, path: "/",
			header: reply("Blue", "b1"), wantSeen: reply("Blue", "b1", "X-Request-Red", "b1")},
		{name: "MapRequestHeader adds to an existing target", filters: `["MapRequestHeader=Blue, X-Request-Red"]`, path: "/",
			header: reply("Blue", "b1", "X-Request-Red", "r1"), wantSeen: reply("X-Request-Red", "r1", "X-Request-Red", "b1")},
		{name: "MapRequestHeader without the source does nothing", filters: `["MapRequestHeader=Blue, X-Request-Red"]`, path: "/",
			seenAbsent: []string{"X-Request-Red"}},
		{name: "SetRequestHeader with a path variable", predicates: `["Path=/foo/{segment}"]`, filters: `["SetRequestHeader=foo, bar-{segment}"]`,
			path: "/foo/baz", header: reply("Foo", "client"), wantSeen: reply("Foo", "bar-baz")},
		{name: "SetResponseHeader with a path variable", predicates: `["Path=/foo/{segment}"]`, filters: `["SetResponseHeader=foo, bar-{segment}"]`,
			path: "/foo/baz", header: reply("X-Reply-Header", "Foo: backend"), wantResp: reply("Foo", "bar-baz")},
		{name: "AddRequestParameter to an empty query", filters: `["AddRequestParameter=red, blue"]`, path: "/a", wantURI: "/a?red=blue"},
		{name: "AddRequestParameter keeps the query", filters: `["AddRequestParameter=red, blue"]`, path: "/a?x=1&red=green", wantURI: "/a?x=1&red=green&red=blue"},
		{name: "AddRequestParameter with a host variable", predicates: `["Host={segment}.myhost.org"]`, filters: `["AddRequestParameter=foo, bar-{segment}"]`,
			host: "www.myhost.org", path: "/", wantURI: "/?foo=bar-www"},
		{name: "AddRequestParameter encodes", filters: `["AddRequestParameter=q, a b&c"]`, path: "/", wantURI: "/?q=a+b%26c"},
		{name: "RemoveRequestParameter removes every occurrence", filters: `["RemoveRequestParameter=red"]`, path: "/a?red=1&x=2&red=3", wantURI: "/a?x=2"},
		{name: "RemoveRequestParameter of the only one", filters: `["RemoveRequestParameter=red"]`, path: "/a?red=1", wantURI: "/a"},
		{name: "RemoveRequestParameter absent keeps the query as written", filters: `["RemoveRequestParameter=red"]`, path: "/a?b=%2F", wantURI: "/a?b=%2F"},
		{name: "RewriteRequestParameter replaces", filters: `["RewriteRequestParameter=campaign,fall2023"]`, path: "/a?campaign=old&x=1", wantURI: "/a?campaign=fall2023&x=1"},
		{name: "RewriteRequestParameter several values become one", filters: `["RewriteRequestParameter=campaign,fall2023"]`, path: "/a?campaign=1&campaign=2", wantURI: "/a?campaign=fall2023"},
		{name: "RewriteRequestParameter absent adds nothing", filters: `["RewriteRequestParameter=campaign,fall2023"]`, path: "/a?x=1", wantURI: "/a?x=1"},
		{name: "RewritePath named group and the $\\ escape", predicates: `["Path=/red/**"]`, filters: `['RewritePath=/red/?(?<segment>.*), /$\{segment}']`,
			path: "/red/blue/x", wantURI: "/blue/x"},
		{name: "RewritePath to the root", predicates: `["Path=/red/**"]`, filters: `['RewritePath=/red/?(?<segment>.*), /$\{segment}']`,
			path: "/red", wantURI: "/"},
		{name: "RewritePath no match keeps the path", filters: `['RewritePath=/red/?(?<segment>.*), /$\{segment}']`, path: "/blue/x", wantURI: "/blue/x"},
		{name: "RewritePath numbered group and query kept", filters: `['RewritePath=/api/(.*), /v2/$1']`, path: "/api/x?y=1", wantURI: "/v2/x?y=1"},
		{name: "RewritePath literal dollar", filters: `['RewritePath=/price, /price/\$5']`, path: "/price", wantURI: "/price/$5"},
		{name: "RequestHeaderSize under the limit", filters: `["RequestHeaderSize=1000B"]`, path: "/", header: reply("X-Small", "1"), wantSeen: reply("X-Small", "1")},
		{name: "RequestHeaderSize over the limit is 431", filters: `["RequestHeaderSize=1000B"]`, path: "/",
			header: reply("X-Big", strings.Repeat("x", 1001)), wantStatus: 431, noBackend: true,
			wantResp: reply("Errormessage", "Request Header/s size is larger than permissible limit. Request Header/s size for 'X-Big' is 1006B. Permissible limit for header size is 1000B")},
		{name: "RequestHeaderSize custom error header", filters: `["RequestHeaderSize=12B, X-Why"]`, path: "/",
			header: reply("X-Big", "0123456789", "User-Agent", "t", "X-Case", "c"), wantStatus: 431, noBackend: true,
			wantResp: reply("X-Why", "Request Header/s size is larger than permissible limit. Request Header/s size for 'X-Big' is 15B. Permissible limit for header size is 12B")},
		{name: "RequestSize under the limit", filters: `["RequestSize=100"]`, method: "POST", path: "/", body: strings.Repeat("a", 100), seenBody: strings.Repeat("a", 100)},
		{name: "RequestSize over the limit is 413", filters: `["RequestSize=100"]`, method: "POST", path: "/", body: strings.Repeat("a", 101),
			wantStatus: 413, noBackend: true,
			wantResp: reply("Errormessage", "Request size is larger than permissible limit. Request size is 101 B where permissible limit is 100 B")},
		{name: "RequestSize in MB as Spring formats it", filters: `["RequestSize=1KB"]`, method: "POST", path: "/", body: strings.Repeat("a", 6000),
			wantStatus: 413, noBackend: true,
			wantResp: reply("Errormessage", "Request size is larger than permissible limit. Request size is 6.0 KB where permissible limit is 1.0 KB")},
		{name: "RequestSize cuts a chunked body", filters: `["RequestSize=100", "CacheRequestBody=java.lang.String"]`, method: "POST", path: "/",
			body: strings.Repeat("a", 101), chunked: true, wantStatus: 413, noBackend: true},
		{name: "RequestSize cuts a streamed chunked body", filters: `["RequestSize=100"]`, method: "POST", path: "/",
			body: strings.Repeat("a", 200000), chunked: true, wantStatus: 413},
		{name: "CacheRequestBody gives a chunked body a length", filters: `["CacheRequestBody=java.lang.String"]`, method: "POST", path: "/",
			body: "hello", chunked: true, seenBody: "hello", wantSeen: reply("Content-Length", "5")},
		{name: "CacheRequestBody over maxSize is 413", filters: `[{name: CacheRequestBody, args: {bodyClass: java.lang.String, maxSize: 4B}}]`,
			method: "POST", path: "/", body: "hello", chunked: true, wantStatus: 413, noBackend: true},
	})
}

// TestFilterResponseSide covers the filters that edit or replace the response.
func TestFilterResponseSide(t *testing.T) {
	t.Parallel()
	acao := func(vals ...string) http.Header {
		h := http.Header{}
		for _, v := range vals {
			h.Add("X-Reply-Header", "Access-Control-Allow-Origin: "+v)
		}
		return h
	}
	jsonBody := `{"id":1,"color":"red","name":"x","nested":{"id":2,"keep":[{"color":"c","v":1.50}]}}`
	jsonReply := reply("X-Reply-Body", jsonBody, "X-Reply-Type", "application/json")
	runFilterCases(t, []filterCase{
		{name: "DedupeResponseHeader RETAIN_FIRST by default", filters: `["DedupeResponseHeader=Access-Control-Allow-Origin"]`,
			path: "/", header: acao("a", "b", "a"), wantResp: reply("Access-Control-Allow-Origin", "a")},
		{name: "DedupeResponseHeader RETAIN_LAST", filters: `["DedupeResponseHeader=Access-Control-Allow-Origin, RETAIN_LAST"]`,
			path: "/", header: acao("a", "b"), wantResp: reply("Access-Control-Allow-Origin", "b")},
		{name: "DedupeResponseHeader RETAIN_UNIQUE", filters: `["DedupeResponseHeader=Access-Control-Allow-Origin, RETAIN_UNIQUE"]`,
			path: "/", header: acao("a", "a", "b"), wantResp: reply("Access-Control-Allow-Origin", "a", "Access-Control-Allow-Origin", "b")},
		{name: "DedupeResponseHeader several names", filters: `["DedupeResponseHeader=Access-Control-Allow-Credentials Access-Control-Allow-Origin"]`,
			path: "/", header: reply("X-Reply-Header", "Access-Control-Allow-Credentials: true", "X-Reply-Header", "Access-Control-Allow-Credentials: true",
				"X-Reply-Header", "Access-Control-Allow-Origin: a", "X-Reply-Header", "Access-Control-Allow-Origin: a"),
			wantResp: reply("Access-Control-Allow-Credentials", "true", "Access-Control-Allow-Origin", "a")},
		{name: "RewriteResponseHeader", filters: `["RewriteResponseHeader=X-Response-Red, password=[^&]+, password=***"]`, path: "/",
			header:   reply("X-Reply-Header", "X-Response-Red: /42?user=ford&password=omg!what&flag=true"),
			wantResp: reply("X-Response-Red", "/42?user=ford&password=***&flag=true")},
		{name: "RewriteLocationResponseHeader strips the version as in the request", filters: `["RewriteLocationResponseHeader=AS_IN_REQUEST, Location, ,"]`,
			host: "api.example.com", path: "/some/object/name",
			header:     reply("X-Reply-Header", "Location: https://object-service.prod.example.net/v2/some/object/id", "X-Reply-Status", "201"),
			wantStatus: 201, wantResp: reply("Location", "https://api.example.com/some/object/id")},
		{name: "RewriteLocationResponseHeader keeps the version the request had", filters: `["RewriteLocationResponseHeader=AS_IN_REQUEST, Location, ,"]`,
			host: "api.example.com", path: "/v2/some/object/name",
			header:   reply("X-Reply-Header", "Location: https://object-service.prod.example.net:8443/v2/some/object/id"),
			wantResp: reply("Location", "https://api.example.com/v2/some/object/id")},
		{name: "RewriteLocationResponseHeader NEVER_STRIP with hostValue", filters: `["RewriteLocationResponseHeader=NEVER_STRIP, Location, edge.example.com,"]`,
			path:     "/x",
			header:   reply("X-Reply-Header", "Location: http://10.0.0.1:8080/v1/x"),
			wantResp: reply("Location", "http://edge.example.com/v1/x")},
		{name: "RewriteLocationResponseHeader leaves other protocols", filters: `["RewriteLocationResponseHeader=ALWAYS_STRIP, Location, ,"]`,
			path: "/x", header: reply("X-Reply-Header", "Location: mailto://a.b/v1/x"), wantResp: reply("Location", "mailto://a.b/v1/x")},
		{name: "SecureHeaders defaults", filters: `["SecureHeaders"]`, path: "/", wantResp: reply(
			"X-Xss-Protection", "1 ; mode=block", "Strict-Transport-Security", "max-age=631138519", "X-Frame-Options", "DENY",
			"X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer",
			"Content-Security-Policy", "default-src 'self' https:; font-src 'self' https: data:; img-src 'self' https: data:; object-src 'none'; script-src https:; style-src 'self' https: 'unsafe-inline'",
			"X-Download-Options", "noopen", "X-Permitted-Cross-Domain-Policies", "none"),
			respAbsent: []string{"Permissions-Policy"}},
		{name: "SecureHeaders disable, enable and override", filters: `[{name: SecureHeaders, args: {disable: [x-frame-options, strict-transport-security], enable: [permissions-policy], permissionsPolicy: "camera=()", referrerPolicy: same-origin}}]`,
			path: "/", wantResp: reply("Permissions-Policy", "camera=()", "Referrer-Policy", "same-origin"),
			respAbsent: []string{"X-Frame-Options", "Strict-Transport-Security"}},
		{name: "SecureHeaders keeps the backend's own", filters: `["SecureHeaders"]`, path: "/",
			header: reply("X-Reply-Header", "X-Frame-Options: SAMEORIGIN"), wantResp: reply("X-Frame-Options", "SAMEORIGIN")},
		{name: "SetStatus by name", filters: `["SetStatus=UNAUTHORIZED"]`, path: "/", wantStatus: 401},
		{name: "SetStatus by number with the original status header", filters: `[{name: SetStatus, args: {status: 418, originalStatusHeaderName: X-Original-Status}}]`,
			path: "/", header: reply("X-Reply-Status", "201"), wantStatus: 418, wantResp: reply("X-Original-Status", "201")},
		{name: "RedirectTo", filters: `["RedirectTo=302, https://acme.org"]`, path: "/a?x=1", wantStatus: 302,
			wantResp: reply("Location", "https://acme.org"), noBackend: true},
		{name: "RedirectTo with the request's parameters", filters: `["RedirectTo=301, https://acme.org/p?a=1, true"]`, path: "/a?x=1&y=2", wantStatus: 301,
			wantResp: reply("Location", "https://acme.org/p?a=1&x=1&y=2"), noBackend: true},
		{name: "RemoveJsonAttributesResponseBody top level", filters: `["RemoveJsonAttributesResponseBody=id, color"]`, path: "/", header: jsonReply,
			wantBody: `{"name":"x","nested":{"id":2,"keep":[{"color":"c","v":1.50}]}}`},
		{name: "RemoveJsonAttributesResponseBody recursively", filters: `["RemoveJsonAttributesResponseBody=id, color, true"]`, path: "/", header: jsonReply,
			wantBody: `{"name":"x","nested":{"keep":[{"v":1.50}]}}`, wantResp: reply("Content-Length", "43")},
		{name: "RemoveJsonAttributesResponseBody top-level array", filters: `[{name: RemoveJsonAttributesResponseBody, args: {fieldList: [id], deleteRecursively: false}}]`,
			path: "/", header: reply("X-Reply-Body", `[{"id":1,"a":2},{"id":3}]`, "X-Reply-Type", "application/vnd.x+json"),
			wantBody: `[{"a":2},{}]`},
		{name: "RemoveJsonAttributesResponseBody leaves other types", filters: `["RemoveJsonAttributesResponseBody=id"]`, path: "/",
			header: reply("X-Reply-Body", `{"id":1}`, "X-Reply-Type", "text/plain"), wantBody: `{"id":1}`},
		{name: "RemoveJsonAttributesResponseBody over maxSize is 502", filters: `[{name: RemoveJsonAttributesResponseBody, args: {fieldList: [id], maxSize: 16B}}]`,
			path: "/", header: jsonReply, wantStatus: 502, wantResp: reply("X-Sluice-Reason", "response_body_too_large")},
	})
}
