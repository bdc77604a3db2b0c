package h1diff

import (
	"bytes"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzCompare feeds the same bytes to both parsers and fails on a
// disagreement that no documented rule (known, docs/engine.md) covers.
// Inputs it found are kept in testdata/fuzz/FuzzCompare.
//
//	go test -run '^$' -fuzz FuzzCompare -fuzztime 3m ./internal/testkit/h1diff/
func FuzzCompare(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := Compare(raw)
		if d == nil || known(raw, d) != "" {
			return
		}
		t.Errorf("undocumented disagreement: %v\ninput: %q", d, raw)
	})
}

// A rule is one documented disagreement class: its heading in
// docs/engine.md and whether d on raw belongs to it.
type rule struct {
	name  string
	match func(raw []byte, d *Diff) bool
}

// rules is filled by init: one rule looks others up through known.
var rules []rule

func init() { rules = documented }

var documented = []rule{
	{"fasthttp refuses what net/http accepts", func(_ []byte, d *Diff) bool {
		return d.Class == Accept && d.NetHTTP == "accepts"
	}},
	{"fasthttp accepts versions other than HTTP/1.0 and HTTP/1.1", func(raw []byte, d *Diff) bool {
		v := ParseFastHTTP(raw).Version
		return v != "" && v != "HTTP/1.0" && v != "HTTP/1.1"
	}},
	{"fasthttp accepts header names that are not tokens", func(_ []byte, d *Diff) bool {
		return d.Class == Accept && strings.Contains(d.NetHTTP, "invalid header name")
	}},
	{"fasthttp accepts a malformed Host header", func(_ []byte, d *Diff) bool {
		return d.Class == Accept && strings.Contains(d.NetHTTP, "malformed Host header")
	}},
	{"fasthttp accepts request targets net/http cannot parse", func(raw []byte, d *Diff) bool {
		var ue *url.Error
		return d.Class == Accept && errors.As(ParseNetHTTP(raw).Err, &ue)
	}},
	{"fasthttp percent-decodes the host", func(raw []byte, d *Diff) bool {
		return d.Class == Target && strings.Contains(ParseNetHTTP(raw).Host, "%")
	}},
	{"absolute-form targets name different hosts", func(raw []byte, d *Diff) bool {
		return d.Class == Target && strings.Contains(ParseNetHTTP(raw).Target, "://")
	}},
	{"CONNECT targets name different hosts", func(raw []byte, d *Diff) bool {
		return d.Class == Target && ParseNetHTTP(raw).Method == "CONNECT"
	}},
	{"fasthttp skips empty lines before the request line", func(raw []byte, d *Diff) bool {
		rest := bytes.TrimLeft(raw, "\r\n")
		if d.Class != Accept || d.FastHTTP != "accepts" || len(rest) == len(raw) {
			return false
		}
		d2 := Compare(rest)
		return d2 == nil || known(rest, d2) != ""
	}},
	{"fasthttp keeps cookies with an empty name", func(raw []byte, d *Diff) bool {
		return d.Class == Cookie && slices.ContainsFunc(ParseFastHTTP(raw).Cookies, func(c string) bool {
			return strings.HasPrefix(c, "=")
		})
	}},
	{"fasthttp trims whitespace in cookie values that net/http keeps", func(raw []byte, d *Diff) bool {
		strip := strings.NewReplacer(" ", "", "\t", "")
		return d.Class == Cookie && strip.Replace(d.NetHTTP) == strip.Replace(d.FastHTTP)
	}},
	{"net/http drops invalid cookies that fasthttp keeps", func(raw []byte, d *Diff) bool {
		return d.Class == Cookie && len(ParseNetHTTP(raw).Cookies) < len(ParseFastHTTP(raw).Cookies)
	}},
	{"fasthttp closes after Content-Length with Transfer-Encoding", func(raw []byte, d *Diff) bool {
		h := fields(raw)
		return d.Class == Close && d.FastHTTP == "true" && h["Content-Length"] != nil && h["Transfer-Encoding"] != nil
	}},
}

// known returns the name of the rule d on raw belongs to, or "".
func known(raw []byte, d *Diff) string {
	for _, r := range rules {
		if r.match(raw, d) {
			return r.name
		}
	}
	return ""
}
