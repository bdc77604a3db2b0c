package route

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	want := map[string][]string{
		"After":                {"datetime"},
		"Before":               {"datetime"},
		"Between":              {"datetime1", "datetime2"},
		"Cookie":               {"name", "regexp"},
		"Header":               {"header", "regexp"},
		"Host":                 {"patterns..."},
		"Method":               {"methods..."},
		"Path":                 {"patterns...", "matchTrailingSlash"},
		"Query":                {"param", "regexp"},
		"RemoteAddr":           {"sources..."},
		"Weight":               {"group", "weight"},
		"XForwardedRemoteAddr": {"sources..."},
	}
	got := Predicates()
	if len(got) != len(want) {
		t.Errorf("registry has %d predicates, want %d", len(got), len(want))
	}
	for name, fields := range want {
		t.Run(name, func(t *testing.T) {
			f, ok := got[name]
			if !ok {
				t.Fatalf("%s missing", name)
			}
			if !slices.Equal(f.Fields, fields) {
				t.Errorf("%s fields = %q, want %q", name, f.Fields, fields)
			}
		})
	}
	if _, ok := got["path"]; ok {
		t.Error(`lookup must be case-sensitive, but "path" exists`)
	}
}

// predicateCase is one request against one predicate.
type predicateCase struct {
	name   string
	spec   string
	method string // default GET
	target string // default "/"
	edit   func(r *http.Request)
	want   bool
}

func runPredicateCases(t *testing.T, env *Env, tests []predicateCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPredicate(t, tc.spec, env)
			method, target := cmpOr(tc.method, http.MethodGet), cmpOr(tc.target, "/")
			in := mustInput(t, method, target, tc.edit)
			if got := p.Match(in); got != tc.want {
				t.Errorf("%s on %s %s = %v, want %v", tc.spec, method, target, got, tc.want)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func header(kv ...string) func(r *http.Request) {
	return func(r *http.Request) {
		for i := 0; i < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
	}
}

func remote(addr string, kv ...string) func(r *http.Request) {
	return func(r *http.Request) {
		r.RemoteAddr = addr
		header(kv...)(r)
	}
}

func TestMethod(t *testing.T) {
	runPredicateCases(t, nil, []predicateCase{
		{name: "doc GET", spec: "Method=GET,POST", method: "GET", want: true},
		{name: "doc POST", spec: "Method=GET,POST", method: "POST", want: true},
		{name: "doc PUT", spec: "Method=GET,POST", method: "PUT", want: false},
		{name: "lower-case config", spec: "Method=get", method: "GET", want: true},
		{name: "extension method", spec: "Method=PURGE", method: "PURGE", want: true},
	})
}

func TestHeader(t *testing.T) {
	runPredicateCases(t, nil, []predicateCase{
		{name: "doc match", spec: `Header=X-Request-Id, \d+`, edit: header("X-Request-Id", "123"), want: true},
		{name: "doc no match", spec: `Header=X-Request-Id, \d+`, edit: header("X-Request-Id", "abc"), want: false},
		{name: "whole value must match", spec: `Header=X-Request-Id, \d+`, edit: header("X-Request-Id", "12a"), want: false},
		{name: "absent", spec: `Header=X-Request-Id, \d+`, want: false},
		{name: "any of several values", spec: `Header=X-Request-Id, \d+`, edit: header("X-Request-Id", "abc", "X-Request-Id", "7"), want: true},
		{name: "name case-insensitive", spec: `Header=x-request-id, \d+`, edit: header("X-REQUEST-ID", "7"), want: true},
		{name: "present", spec: `Header=X-Debug`, edit: header("X-Debug", ""), want: true},
		{name: "not present", spec: `Header=X-Debug`, want: false},
		{name: "host header", spec: `Header=host, .*\.example\.com(:\d+)?`, target: "http://api.example.com:8080/", want: true},
		{name: "host header mismatch", spec: `Header=Host, .*\.example\.com`, target: "http://api.example.org/", want: false},
	})
}

func TestQuery(t *testing.T) {
	runPredicateCases(t, nil, []predicateCase{
		{name: "doc present", spec: "Query=green", target: "/?green=1", want: true},
		{name: "doc present no value", spec: "Query=green", target: "/?a=1&green", want: true},
		{name: "doc absent", spec: "Query=green", target: "/?red=1", want: false},
		{name: "doc regexp", spec: "Query=red, gree.", target: "/?red=greet", want: true},
		{name: "doc regexp no match", spec: "Query=red, gree.", target: "/?red=green1", want: false},
		{name: "second value matches", spec: "Query=red, gree.", target: "/?red=x&red=green", want: true},
		{name: "encoded key and value", spec: "Query=a b, x/y", target: "/?a+b=x%2Fy", want: true},
		{name: "prefix of key", spec: "Query=green", target: "/?greenish=1", want: false},
		{name: "no query", spec: "Query=green", want: false},
	})
}

func TestCookie(t *testing.T) {
	runPredicateCases(t, nil, []predicateCase{
		{name: "doc match", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", "chocolate=chip"), want: true},
		{name: "doc no match", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", "chocolate=chips"), want: false},
		{name: "among others", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", "a=1; chocolate=chop; b=2"), want: true},
		{name: "second header", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", "a=1", "Cookie", "chocolate=chip"), want: true},
		{name: "quoted", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", `chocolate="chip"`), want: true},
		{name: "name is exact", spec: "Cookie=chocolate, ch.p", edit: header("Cookie", "Chocolate=chip"), want: false},
		{name: "present", spec: "Cookie=session", edit: header("Cookie", "session=x"), want: true},
		{name: "absent", spec: "Cookie=session", edit: header("Cookie", "other=x"), want: false},
	})
}

func TestRemoteAddr(t *testing.T) {
	runPredicateCases(t, nil, []predicateCase{
		{name: "doc in subnet", spec: "RemoteAddr=192.168.1.1/24", edit: remote("192.168.1.10:5000"), want: true},
		{name: "doc outside subnet", spec: "RemoteAddr=192.168.1.1/24", edit: remote("192.168.2.10:5000"), want: false},
		{name: "single address", spec: "RemoteAddr=10.0.0.1", edit: remote("10.0.0.1:1"), want: true},
		{name: "single address other", spec: "RemoteAddr=10.0.0.1", edit: remote("10.0.0.2:1"), want: false},
		{name: "ipv6 cidr", spec: "RemoteAddr=2001:db8::/32", edit: remote("[2001:db8:1::5]:443"), want: true},
		{name: "ipv6 cidr other", spec: "RemoteAddr=2001:db8::/32", edit: remote("[2001:db9::5]:443"), want: false},
		{name: "ipv4-mapped peer", spec: "RemoteAddr=10.0.0.0/8", edit: remote("[::ffff:10.1.2.3]:1"), want: true},
		{name: "several sources", spec: "RemoteAddr=10.0.0.0/8, 2001:db8::/32", edit: remote("[2001:db8::1]:1"), want: true},
		{name: "XFF ignored", spec: "RemoteAddr=10.0.0.0/8", edit: remote("203.0.113.1:1", "X-Forwarded-For", "10.0.0.1"), want: false},
		{name: "unparsable peer", spec: "RemoteAddr=0.0.0.0/0", edit: remote("@"), want: false},
	})
}

func TestXForwardedRemoteAddr(t *testing.T) {
	env := &Env{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	runPredicateCases(t, env, []predicateCase{
		{name: "client behind trusted proxy", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "192.168.1.10"), want: true},
		{name: "client outside", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "192.168.2.10"), want: false},
		{name: "trusted hops skipped", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "192.168.1.10, 10.0.0.2, 10.0.0.3"), want: true},
		{name: "spoofed leftmost entry ignored", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "192.168.1.10, 203.0.113.9"), want: false},
		{name: "spoofing from untrusted peer", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("203.0.113.9:1", "X-Forwarded-For", "192.168.1.10"), want: false},
		{name: "untrusted peer is the client", spec: "XForwardedRemoteAddr=203.0.113.0/24",
			edit: remote("203.0.113.9:1", "X-Forwarded-For", "192.168.1.10"), want: true},
		{name: "no header uses peer", spec: "XForwardedRemoteAddr=10.0.0.0/8",
			edit: remote("10.0.0.1:1"), want: true},
		{name: "several header lines", spec: "XForwardedRemoteAddr=192.168.1.1/24",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "192.168.1.10", "X-Forwarded-For", "10.0.0.5"), want: true},
		{name: "ipv6 entry with port", spec: "XForwardedRemoteAddr=2001:db8::/32",
			edit: remote("[fd00::1]:1", "X-Forwarded-For", "[2001:db8::7]:5555"), want: true},
		{name: "garbage entry", spec: "XForwardedRemoteAddr=0.0.0.0/0",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "1.2.3.4, unknown"), want: false},
		{name: "all trusted gives leftmost", spec: "XForwardedRemoteAddr=10.0.0.7",
			edit: remote("10.0.0.1:1", "X-Forwarded-For", "10.0.0.7, 10.0.0.8"), want: true},
	})
	t.Run("no trusted proxies", func(t *testing.T) {
		p := mustPredicate(t, "XForwardedRemoteAddr=192.168.1.1/24", nil)
		in := mustInput(t, http.MethodGet, "/", remote("10.0.0.1:1", "X-Forwarded-For", "192.168.1.10"))
		if p.Match(in) {
			t.Error("X-Forwarded-For believed without trusted proxies")
		}
	})
}

func TestTimePredicates(t *testing.T) {
	const (
		t1 = "2017-01-20T17:42:47.789-07:00[America/Denver]"
		t2 = "2017-01-21T17:42:47.789-07:00[America/Denver]"
	)
	at := func(s string) *Env {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &Env{Now: func() time.Time { return tm }}
	}
	tests := []struct {
		name, spec, now string
		want            bool
	}{
		{"after: later", "After=" + t1, "2017-01-20T18:00:00-07:00", true},
		{"after: earlier", "After=" + t1, "2017-01-20T17:00:00-07:00", false},
		{"after: same instant other zone", "After=" + t1, "2017-01-21T00:42:47.789Z", false},
		{"before: earlier", "Before=" + t1, "2017-01-20T17:00:00-07:00", true},
		{"before: later", "Before=" + t1, "2017-01-20T18:00:00-07:00", false},
		{"between: inside", "Between=" + t1 + "," + t2, "2017-01-21T00:00:00-07:00", true},
		{"between: before", "Between=" + t1 + "," + t2, "2017-01-20T00:00:00-07:00", false},
		{"between: after", "Between=" + t1 + "," + t2, "2017-01-22T00:00:00-07:00", false},
		{"between: lower bound excluded", "Between=" + t1 + "," + t2, "2017-01-20T17:42:47.789-07:00", false},
		{"between: upper bound excluded", "Between=" + t1 + "," + t2, "2017-01-21T17:42:47.789-07:00", false},
		{"between: just inside lower bound", "Between=" + t1 + "," + t2, "2017-01-20T17:42:47.79-07:00", true},
		{"epoch millis", "After=1484959367789", "2017-01-21T00:42:48Z", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPredicate(t, tc.spec, at(tc.now))
			if got := p.Match(&Input{}); got != tc.want {
				t.Errorf("%s at %s = %v, want %v", tc.spec, tc.now, got, tc.want)
			}
		})
	}
}

func TestParseDateTime(t *testing.T) {
	want := time.Date(2017, 1, 21, 0, 42, 47, 789e6, time.UTC)
	tests := []struct {
		name, in string
	}{
		{"zoned", "2017-01-20T17:42:47.789-07:00[America/Denver]"},
		{"rfc3339", "2017-01-20T17:42:47.789-07:00"},
		{"utc", "2017-01-21T00:42:47.789Z"},
		{"utc with zone", "2017-01-21T00:42:47.789Z[UTC]"},
		{"epoch millis", "1484959367789"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDateTime(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Errorf("parseDateTime(%q) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

func TestPredicateErrors(t *testing.T) {
	tests := []struct {
		name, spec, wantErr string
	}{
		{"method empty", "Method=", "Method: methods: required"},
		{"method bad", "Method=GE T", `Method: method "GE T" is not an HTTP method`},
		{"header missing", "Header=", "Header: header: required"},
		{"header bad regexp", "Header=X-A, (", `Header: regexp "(": invalid regexp: missing closing )`},
		{"query missing", "Query=", "Query: param: required"},
		{"cookie bad regexp", "Cookie=a, [", `Cookie: regexp "[": invalid regexp: missing closing ]`},
		{"remote bad", "RemoteAddr=10.0.0.300", `RemoteAddr: source "10.0.0.300" is not an IP address or CIDR`},
		{"remote empty", "RemoteAddr=", `RemoteAddr: sources: required`},
		{"xff bad", "XForwardedRemoteAddr=example.com", `XForwardedRemoteAddr: source "example.com"`},
		{"weight missing", "Weight=group1", `Weight: weight: required`},
		{"weight negative", "Weight=group1, -1", `Weight: weight "-1" is not a non-negative integer`},
		{"weight not a number", "Weight=group1, x", `Weight: weight "x"`},
		{"after bad", "After=yesterday", `After: datetime "yesterday" is not a date-time`},
		{"after bad zone", "After=2017-01-20T17:42:47[Mars/Olympus]", `unknown time zone "Mars/Olympus"`},
		{"between reversed", "Between=2017-01-21T00:00:00Z, 2017-01-20T00:00:00Z", `Between: datetime1 (2017-01-21T00:00:00Z) must be before datetime2`},
		{"between missing", "Between=2017-01-21T00:00:00Z", `Between: datetime2: required`},
		{"too many args", "Header=a, b, c", `too many arguments`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPredicate(tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s: error %v, want it to contain %q", tc.spec, err, tc.wantErr)
			}
		})
	}
	t.Run("path matchTrailingSlash", func(t *testing.T) {
		f := Predicates()["Path"]
		a, err := argsSpec{positional: []string{"/a"}, named: map[string][]string{"matchTrailingSlash": {"maybe"}}}.bind(f.Fields)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.New(a, nil)
		if want := `matchTrailingSlash "maybe" is not true or false`; err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
}
