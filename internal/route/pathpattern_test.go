package route

import (
	"net/http"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		path     string
		want     bool
		wantVars string
	}{
		// Spring docs: Path=/red/{segment},/blue/{segment}
		{name: "doc red", spec: "Path=/red/{segment},/blue/{segment}", path: "/red/1", want: true, wantVars: "segment=1"},
		{name: "doc red trailing slash", spec: "Path=/red/{segment},/blue/{segment}", path: "/red/1/", want: true, wantVars: "segment=1"},
		{name: "doc blue", spec: "Path=/red/{segment},/blue/{segment}", path: "/blue/green", want: true, wantVars: "segment=green"},
		{name: "doc other", spec: "Path=/red/{segment},/blue/{segment}", path: "/green/1", want: false},
		{name: "doc red extra segment", spec: "Path=/red/{segment},/blue/{segment}", path: "/red/1/2", want: false},
		{name: "trailing slash off", spec: "Path=/red/{segment},/blue/{segment},false", path: "/red/1/", want: false},
		{name: "trailing slash off exact", spec: "Path=/red/{segment},/blue/{segment},false", path: "/red/1", want: true, wantVars: "segment=1"},
		{name: "pattern slash needs path slash", spec: "Path=/a/", path: "/a", want: false},
		{name: "pattern slash", spec: "Path=/a/", path: "/a/", want: true},
		{name: "root", spec: "Path=/", path: "/", want: true},
		{name: "root only", spec: "Path=/", path: "/a", want: false},
		{name: "literal", spec: "Path=/api/users", path: "/api/users", want: true},
		{name: "literal case-sensitive", spec: "Path=/api/users", path: "/API/users", want: false},
		{name: "literal prefix is not a match", spec: "Path=/api", path: "/apiv2", want: false},
		{name: "empty capture", spec: "Path=/a/{id}", path: "/a/", want: false},
		{name: "question mark", spec: "Path=/a/b?d", path: "/a/bcd", want: true},
		{name: "question mark is one character", spec: "Path=/a/b?d", path: "/a/béd", want: true},
		{name: "question mark needs a char", spec: "Path=/a/b?d", path: "/a/bd", want: false},
		{name: "star in segment", spec: "Path=/img/*.png", path: "/img/cat.png", want: true},
		{name: "star in segment other ext", spec: "Path=/img/*.png", path: "/img/cat.gif", want: false},
		{name: "star does not cross segments", spec: "Path=/img/*.png", path: "/img/a/cat.png", want: false},
		{name: "star segment", spec: "Path=/a/*/c", path: "/a/b/c", want: true},
		{name: "final star matches empty", spec: "Path=/a/*", path: "/a/", want: true},
		{name: "final star needs the slash", spec: "Path=/a/*", path: "/a", want: false},
		{name: "double star", spec: "Path=/api/**", path: "/api/a/b/c", want: true},
		{name: "double star zero segments", spec: "Path=/api/**", path: "/api", want: true},
		{name: "double star trailing slash", spec: "Path=/api/**", path: "/api/", want: true},
		{name: "double star other prefix", spec: "Path=/api/**", path: "/apix/a", want: false},
		{name: "double star everything", spec: "Path=/**", path: "/x/y", want: true},
		{name: "rest capture", spec: "Path=/files/{*rest}", path: "/files/a/b.txt", want: true, wantVars: "rest=/a/b.txt"},
		{name: "rest capture empty", spec: "Path=/files/{*rest}", path: "/files", want: true, wantVars: "rest="},
		{name: "rest capture slash", spec: "Path=/files/{*rest}", path: "/files/", want: true, wantVars: "rest=/"},
		{name: "rest capture root", spec: "Path=/{*rest}", path: "/", want: true, wantVars: "rest=/"},
		{name: "regex var", spec: `Path=/users/{id:\d+}`, path: "/users/42", want: true, wantVars: "id=42"},
		{name: "regex var mismatch", spec: `Path=/users/{id:\d+}`, path: "/users/bob", want: false},
		{name: "regex var is anchored", spec: `Path=/users/{id:\d+}`, path: "/users/42x", want: false},
		{name: "regex var with braces", spec: `Path=/zip/{code:\d{5}}`, path: "/zip/12345", want: true, wantVars: "code=12345"},
		{name: "regex var with braces short", spec: `Path=/zip/{code:\d{5}}`, path: "/zip/1234", want: false},
		{name: "mixed captures", spec: "Path=/files/{name}.{ext}", path: "/files/report.final.pdf", want: true, wantVars: "name=report.final ext=pdf"},
		{name: "mixed captures with regex", spec: `Path=/v{major:\d+}/x`, path: "/v2/x", want: true, wantVars: "major=2"},
		{name: "mixed captures mismatch", spec: `Path=/v{major:\d+}/x`, path: "/vx/x", want: false},
		{name: "several vars", spec: "Path=/{tenant}/users/{id}", path: "/acme/users/7", want: true, wantVars: "tenant=acme id=7"},
		{name: "second pattern vars only", spec: "Path=/a/{x}/b,/a/{y}/c", path: "/a/1/c", want: true, wantVars: "y=1"},
		{name: "matrix params ignored", spec: "Path=/users/{id}", path: "/users;v=1/7;jsessionid=2", want: true, wantVars: "id=7"},
		{name: "no leading slash in pattern", spec: "Path=api/**", path: "/api/x", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPredicate(t, tc.spec, nil)
			in := &Input{Path: tc.path}
			if got := p.Match(in); got != tc.want {
				t.Fatalf("%s on %q = %v, want %v", tc.spec, tc.path, got, tc.want)
			}
			if got := varsString(&in.Vars); tc.want && got != tc.wantVars {
				t.Errorf("vars = %q, want %q", got, tc.wantVars)
			}
			if !tc.want && in.Vars.Len() != 0 {
				t.Errorf("vars left after failed match: %q", varsString(&in.Vars))
			}
		})
	}
}

func TestPathNamedArgs(t *testing.T) {
	f := Predicates()["Path"]
	a, err := (argsSpec{named: map[string][]string{"patterns": {"/a"}, "matchTrailingSlash": {"false"}}}).bind(f.Fields)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.New(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Match(&Input{Path: "/a/"}) {
		t.Error("matchTrailingSlash=false: /a matched /a/")
	}
	if !p.Match(&Input{Path: "/a"}) {
		t.Error("/a did not match /a")
	}
}

func TestPathErrors(t *testing.T) {
	tests := []struct {
		name, spec, wantErr string
	}{
		{"missing close", "Path=/a/{id", `Path: pattern "/a/{id": missing "}"`},
		{"close without open", "Path=/a/id}", `Path: pattern "/a/id}": "}" without "{"`},
		{"double star not last", "Path=/a/**/b", `Path: pattern "/a/**/b": "**" must be the last segment`},
		{"rest not last", "Path=/a/{*rest}/b", `Path: pattern "/a/{*rest}/b": "{*rest}" must be the last segment`},
		{"rest inside segment", "Path=/a/x{*rest}", `"{*name}" is only allowed as the whole last path segment`},
		{"duplicate var", "Path=/{id}/{id}", `variable "id" captured twice`},
		{"empty var", "Path=/{}", `invalid variable name ""`},
		{"bad regex", "Path=/{id:(}", `Path: pattern "/{id:(}": variable "id": invalid regexp: missing closing )`},
		{"empty segment", "Path=/a//b", `empty segment`},
		{"dot segment", "Path=/a/../b", `".." segment`},
		{"semicolon", "Path=/a;b", `";" in segment`},
		{"too many vars", "Path=/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", `more than 8 variables`},
		{"no patterns", "Path=", `Path: patterns: required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPredicate(tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s: error %v, want it to contain %q", tc.spec, err, tc.wantErr)
			}
		})
	}
}

func TestHost(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		host     string
		want     bool
		wantVars string
	}{
		// Spring docs: Host=**.somehost.org,**.anotherhost.org
		{name: "doc somehost", spec: "Host=**.somehost.org,**.anotherhost.org", host: "www.somehost.org", want: true},
		{name: "doc beta", spec: "Host=**.somehost.org,**.anotherhost.org", host: "beta.somehost.org", want: true},
		{name: "doc anotherhost", spec: "Host=**.somehost.org,**.anotherhost.org", host: "www.anotherhost.org", want: true},
		{name: "doc other", spec: "Host=**.somehost.org,**.anotherhost.org", host: "www.example.org", want: false},
		{name: "double star zero labels", spec: "Host=**.somehost.org", host: "somehost.org", want: true},
		{name: "double star many labels", spec: "Host=**.somehost.org", host: "a.b.c.somehost.org", want: true},
		{name: "single star one label", spec: "Host=*.example.com", host: "api.example.com", want: true},
		{name: "single star not two labels", spec: "Host=*.example.com", host: "a.b.example.com", want: false},
		{name: "single star not zero labels", spec: "Host=*.example.com", host: "example.com", want: false},
		{name: "suffix is not a label", spec: "Host=*.example.com", host: "api.badexample.com", want: false},
		{name: "exact", spec: "Host=example.com", host: "example.com", want: true},
		{name: "exact other", spec: "Host=example.com", host: "www.example.com", want: false},
		{name: "case-insensitive pattern", spec: "Host=API.Example.com", host: "api.example.com", want: true},
		{name: "pattern port ignored", spec: "Host=example.com:8080", host: "example.com", want: true},
		{name: "var", spec: "Host={sub}.myhost.org", host: "www.myhost.org", want: true, wantVars: "sub=www"},
		{name: "var one label only", spec: "Host={sub}.myhost.org", host: "a.b.myhost.org", want: false},
		{name: "regex var", spec: `Host={env:dev|qa}.example.com`, host: "qa.example.com", want: true, wantVars: "env=qa"},
		{name: "regex var mismatch", spec: `Host={env:dev|qa}.example.com`, host: "prod.example.com", want: false},
		{name: "regex var case-insensitive", spec: `Host={env:DEV}.example.com`, host: "dev.example.com", want: true, wantVars: "env=dev"},
		{name: "mixed var", spec: "Host=api-{region}.example.com", host: "api-eu1.example.com", want: true, wantVars: "region=eu1"},
		{name: "double star in the middle", spec: "Host=api.**.com", host: "api.x.y.com", want: true},
		{name: "glob label", spec: "Host=web-?.example.com", host: "web-1.example.com", want: true},
		{name: "no host", spec: "Host=example.com", host: "", want: false},
		{name: "repeated double star", spec: "Host=**.**.example.com", host: "a.b.example.com", want: true},
		{name: "too long", spec: "Host=**.example.com", host: strings.Repeat("a.", 200) + "example.com", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPredicate(t, tc.spec, nil)
			in := &Input{Host: tc.host}
			if got := p.Match(in); got != tc.want {
				t.Fatalf("%s on %q = %v, want %v", tc.spec, tc.host, got, tc.want)
			}
			if got := varsString(&in.Vars); tc.want && got != tc.wantVars {
				t.Errorf("vars = %q, want %q", got, tc.wantVars)
			}
		})
	}
}

// TestHostIncludePort: with Env.HostIncludePort, Host matches the Host
// header as sent, port included, as Spring Cloud Gateway's
// HostRoutePredicateFactory does by default (AntPathMatcher with "."
// against the header): a pattern without a port matches no request whose
// Host header has one.
func TestHostIncludePort(t *testing.T) {
	env := &Env{HostIncludePort: true}
	tests := []struct {
		spec, url string
		want      bool
	}{
		{"Host=**.example.com", "http://www.example.com/", true},
		{"Host=**.example.com", "http://www.example.com:8080/", false},
		{"Host=**.example.com:8080", "http://www.example.com:8080/", true},
		{"Host=**.example.com:8080", "http://www.example.com:9090/", false},
		{"Host=**.example.com:8080", "http://www.example.com/", false},
		{"Host=**.example.com:*", "http://api.example.com:9090/", true},
		{"Host=API.Example.com:8080", "http://api.example.COM:8080/", true},
		{"Host={sub}.example.com:8080", "http://eu.example.com:8080/", true},
	}
	for _, tc := range tests {
		p := mustPredicate(t, tc.spec, env)
		in := mustInput(t, http.MethodGet, tc.url, nil)
		if got := p.Match(in); got != tc.want {
			t.Errorf("%s on %s = %v, want %v", tc.spec, tc.url, got, tc.want)
		}
		// Without include-port, the port is ignored on both sides.
		if p := mustPredicate(t, tc.spec, nil); !p.Match(in) {
			t.Errorf("%s (ports ignored) did not match %s", tc.spec, tc.url)
		}
	}
}

func TestHostFromRequest(t *testing.T) {
	p := mustPredicate(t, "Host=**.example.com", nil)
	in := mustInput(t, http.MethodGet, "http://WWW.Example.COM:8080/", nil)
	if !p.Match(in) {
		t.Errorf("Host=**.example.com did not match %q", in.Host)
	}
}

func TestHostErrors(t *testing.T) {
	tests := []struct {
		name, spec, wantErr string
	}{
		{"missing close", "Host={sub.example.com", `Host: pattern "{sub.example.com": missing "}"`},
		{"empty label", "Host=a..com", `empty label`},
		{"no patterns", "Host=", `Host: patterns: required`},
		{"rest capture", "Host={*x}.com", `"{*name}" is only allowed as the whole last path segment`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPredicate(tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s: error %v, want it to contain %q", tc.spec, err, tc.wantErr)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		name, pattern, s string
		want             bool
	}{
		{"empty", "", "", true},
		{"star empty", "*", "", true},
		{"star any", "*", "abc", true},
		{"prefix", "a*", "abc", true},
		{"suffix", "*.png", "a.png", true},
		{"suffix mismatch", "*.png", "a.pngx", false},
		{"two stars backtrack", "*a*b", "xaxxab", true},
		{"two stars mismatch", "*a*b", "xaxxa", false},
		{"question", "a?c", "abc", true},
		{"question short", "a?c", "ac", false},
		{"literal", "abc", "abd", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := glob(tc.pattern, tc.s); got != tc.want {
				t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
		})
	}
}
