package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gw/sluice/internal/route"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzH2ToH1Request sends the proxy HTTP/2 requests as net/http's HTTP/2
// server hands them over (any :method, :path and :authority it lets
// through) and writes what the proxy forwards as HTTP/1.1, the way the pool
// does ((*http.Request).Write, after the check every chain ends with). The
// invariant, checked with net/http's own parser: the proxy either refuses
// the request or writes exactly one request with the client's method,
// query and authority (in X-Forwarded-Host) intact.
func FuzzH2ToH1Request(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/api/x", "gw"},
		{"GET /api/evil HTTP/1.1", "/api/x", "gw"},
		{"GET", "/api/x?a HTTP/1.0 X-Evil: 1", "gw"},
		{"GET", "/x", "a b"},
		{"POST", "/x?a=%00&b=\x01", "gw:8080"},
		{"PUT", "/x/../../y?q", "[::1]:443"},
		{"GET", "/%2e%2e/x#frag", "gw"},
		{"OPTIONS", "/x?\x7f", "gw\t"},
		{"M-SEARCH", "/x?a=b&c", "gw."},
	} {
		f.Add(s[0], s[1], s[2])
	}
	var wire bytes.Buffer
	chain := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := checkOutbound(r); err != nil {
			return nil, err
		}
		r.Write(&wire)
		return &http.Response{StatusCode: 204, Header: http.Header{}, Body: http.NoBody}, nil
	})
	table, err := route.NewTable([]route.Route{{ID: "all", Chain: chain}})
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{}
	h.SetTable(&Table{Match: table})

	f.Fuzz(func(t *testing.T, method, path, authority string) {
		// What net/http's HTTP/2 server lets through: field values without
		// CR, LF or NUL, a method, a path starting with "/" that parses.
		for _, v := range []string{method, path, authority} {
			if !httpguts.ValidHeaderFieldValue(v) {
				return
			}
		}
		if method == "" || path == "" || path[0] != '/' {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Method, r.URL, r.RequestURI, r.Host = method, u, path, authority
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		wire.Reset()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if wire.Len() == 0 {
			if w.Code != http.StatusBadRequest {
				t.Fatalf("nothing forwarded, but answered %d", w.Code)
			}
			return
		}
		sent := wire.String()
		br := bufio.NewReader(&wire)
		got, err := http.ReadRequest(br)
		switch {
		case err != nil:
			t.Fatalf("forwarded a malformed request: %v\n%q", err, sent)
		case br.Buffered() > 0:
			t.Fatalf("forwarded more than one request:\n%q", sent)
		case got.Method != method:
			t.Fatalf("method %q became %q", method, got.Method)
		case got.URL.RawQuery != u.RawQuery:
			t.Fatalf("query %q became %q", u.RawQuery, got.URL.RawQuery)
		case got.Header.Get("X-Forwarded-Host") != authority:
			t.Fatalf("authority %q became X-Forwarded-Host %q", authority, got.Header.Get("X-Forwarded-Host"))
		}
	})
}
