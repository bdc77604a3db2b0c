package h1diff

import (
	"errors"
	"testing"
)

// Compare classifies real inputs: the ones both parsers read alike (after
// the normalisation View defines) give nil, and each disagreement found so
// far gives its class and falls under the documented rule named here.
func TestCompareClassifiesKnownInputs(t *testing.T) {
	for _, tc := range []struct {
		desc, raw string
		class     Class  // "" for agreement
		rule      string // the rule in fuzz_test.go (and docs/engine.md) it falls under
	}{
		{desc: "plain GET", raw: "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-A: 2\r\n\r\n"},
		{desc: "chunked POST with a trailer", raw: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n"},
		{desc: "pipelined after a Content-Length body", raw: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{desc: "host in upper case", raw: "GET / HTTP/1.1\r\nHost: A0\r\n\r\n"},
		{desc: "absolute-form with a non-UTF-8 authority", raw: "GET Aaaa://aaaaa0aaaa\xcf0AA/0 HTTP/1.1\r\nHost: 0\r\n\r\n"},
		{desc: "non-ASCII Host", raw: "GET / HTTP/1.1\r\nHost: a\xcfb\r\n\r\n",
			class: Accept, rule: "fasthttp accepts a malformed Host header"},
		{desc: "HTTP/1.0 closes on both", raw: "GET / HTTP/1.0\r\n\r\n"},
		{desc: "bare LF ends with chunked framing", raw: "0 / HTTP/1.1\nHost:0\nTrAnsfer-EnCoding:Chunked\n\n0\r\n\r\n"},
		{desc: "CL and TE", raw: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			class: Close, rule: "fasthttp closes after Content-Length with Transfer-Encoding"},
		{desc: "duplicate equal CL", raw: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			class: Accept, rule: "fasthttp refuses what net/http accepts"},
		{desc: "space inside a header name", raw: "GET / HTTP/1.1\r\nHost: h\r\nH 0000: v\r\n\r\n",
			class: Accept, rule: "fasthttp accepts header names that are not tokens"},
		{desc: "quote in Host", raw: "GET / HTTP/1.0\r\nHost: 0\"\r\n\r\n",
			class: Accept, rule: "fasthttp accepts a malformed Host header"},
		{desc: "HTTP/2.0 on an HTTP/1 connection", raw: "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
			class: Accept, rule: "fasthttp accepts versions other than HTTP/1.0 and HTTP/1.1"},
		{desc: "HTTP/1.2 without Host", raw: "GET / HTTP/1.2\r\n\r\n",
			class: Accept, rule: "fasthttp accepts versions other than HTTP/1.0 and HTTP/1.1"},
		{desc: "HTTP/1.2 kept alive by net/http only", raw: "GET / HTTP/1.2\r\nHost:\r\n\r\n",
			class: Close, rule: "fasthttp accepts versions other than HTTP/1.0 and HTTP/1.1"},
		{desc: "empty line before the request line", raw: "\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
			class: Accept, rule: "fasthttp skips empty lines before the request line"},
		{desc: "a cookie without '='", raw: "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; c\r\n\r\n",
			class: Cookie, rule: "fasthttp keeps cookies with an empty name"},
		{desc: "a cookie with an empty name", raw: "GET / HTTP/1.1\r\nHost: h\r\nCookie: =x\r\n\r\n",
			class: Cookie, rule: "fasthttp keeps cookies with an empty name"},
		{desc: "space in a cookie value", raw: "GET / HTTP/1.1\r\nHost: h\r\nCookie: a= 1\r\n\r\n",
			class: Cookie, rule: "fasthttp trims whitespace in cookie values that net/http keeps"},
		{desc: "non-ASCII cookie value", raw: "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=\xd8\r\n\r\n",
			class: Cookie, rule: "net/http drops invalid cookies that fasthttp keeps"},
		{desc: "quoted cookie, two Cookie fields", raw: "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=\"b\"\r\nCookie: c=d\r\n\r\n"},
		{desc: "unparsable absolute-form", raw: "GET A://# HTTP/1.0\r\n\r\n",
			class: Accept, rule: "fasthttp accepts request targets net/http cannot parse"},
		{desc: "percent-encoded Host", raw: "GET / HTTP/1.0\r\nHost: %800\r\n\r\n",
			class: Target, rule: "fasthttp percent-decodes the host"},
		{desc: "absolute-form with empty authority", raw: "GET A:// HTTP/1.0\r\nHost: 0\r\n\r\n",
			class: Target, rule: "absolute-form targets name different hosts"},
		{desc: "CONNECT without a port", raw: "CONNECT 0 HTTP/1.0\r\n\r\n",
			class: Target, rule: "CONNECT targets name different hosts"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := Compare([]byte(tc.raw))
			if tc.class == "" {
				if d != nil {
					t.Fatalf("Compare = %v, want agreement", d)
				}
				return
			}
			if d == nil || d.Class != tc.class {
				t.Fatalf("Compare = %v, want class %s", d, tc.class)
			}
			if got := known([]byte(tc.raw), d); got != tc.rule {
				t.Errorf("rule %q, want %q (%v)", got, tc.rule, d)
			}
		})
	}
}

// compareViews reports the first field that differs, in class order, for
// the fields no real input has (yet) made the two parsers disagree on.
func TestCompareViewsReportsEachClass(t *testing.T) {
	base := func() View {
		return View{Method: "POST", Version: "HTTP/1.1", Target: "/p", Host: "h", Length: 5, Consumed: 40,
			Body: []byte("hello"), Header: []string{"x-a: 1"}}
	}
	for _, tc := range []struct {
		desc   string
		change func(v *View)
		want   Class
	}{
		{"refused", func(v *View) { v.Err = errors.New("bad") }, Accept},
		{"method", func(v *View) { v.Method = "GET" }, Method},
		{"version", func(v *View) { v.Version = "HTTP/1.0" }, Version},
		{"target", func(v *View) { v.Target = "/q" }, Target},
		{"host", func(v *View) { v.Host = "i" }, Target},
		{"chunked", func(v *View) { v.Chunked, v.Length = true, -1 }, Framing},
		{"length", func(v *View) { v.Length = 4 }, Framing},
		{"end", func(v *View) { v.Consumed = 41 }, Framing},
		{"body", func(v *View) { v.Body = []byte("hellO") }, Body},
		{"header value", func(v *View) { v.Header = []string{"x-a: 2"} }, Header},
		{"header order", func(v *View) { v.Header = []string{"x-a: 1", "x-a: 2"} }, Header},
		{"close", func(v *View) { v.Close = true }, Close},
		{"cookie", func(v *View) { v.Cookies = []string{"a=1"} }, Cookie},
		{"method before body", func(v *View) { v.Method, v.Body = "GET", nil }, Method},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := base()
			tc.change(&f)
			if d := compareViews(base(), f); d == nil || d.Class != tc.want {
				t.Errorf("compareViews = %v, want class %s", d, tc.want)
			}
			if d := compareViews(base(), base()); d != nil {
				t.Errorf("equal views: %v", d)
			}
		})
	}
}
