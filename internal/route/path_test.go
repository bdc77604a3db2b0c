package route

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"root", "/", "/"},
		{"empty", "", "/"},
		{"clean", "/api/users/1", "/api/users/1"},
		{"trailing slash kept", "/a/b/", "/a/b/"},
		{"dot dot", "/api/../admin", "/admin"},
		{"double slash", "//admin", "/admin"},
		{"inner double slash", "/a//b", "/a/b"},
		{"dot", "/a/./b/", "/a/b/"},
		{"dot dot above root", "/../../etc/passwd", "/etc/passwd"},
		{"trailing dot dot", "/a/b/..", "/a/"},
		{"trailing dot", "/a/.", "/a/"},
		{"encoded slash and dots", "/api%2F..%2Fadmin", "/admin"},
		{"encoded dots", "/api/%2e%2e/admin", "/admin"},
		{"upper-case hex", "/api/%2E%2E/admin", "/admin"},
		{"encoded space", "/a%20b", "/a b"},
		{"double encoding decoded once", "/a/%252e%252e/b", "/a/%2e%2e/b"},
		{"dot dot with params", "/api/..;x=1/admin", "/admin"},
		{"dot dot semicolon", "/api/..;/admin", "/admin"},
		{"dot with params", "/a/.;x/b", "/a/b"},
		{"params kept", "/a;jsessionid=1/b", "/a;jsessionid=1/b"},
		{"three dots are a name", "/a/.../b", "/a/.../b"},
		{"dotfile", "/a/.git/config", "/a/.git/config"},
		{"relative", "a/b", "/a/b"},
		{"only dots", "/..", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.raw)
			if err != nil {
				t.Fatalf("CleanPath(%q): %v", tc.raw, err)
			}
			if got != tc.want {
				t.Errorf("CleanPath(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

func TestCleanPathErrors(t *testing.T) {
	tests := []struct {
		name, raw string
	}{
		{"invalid hex", "/a%zz"},
		{"truncated escape", "/a%2"},
		{"lone percent", "/a%"},
		{"encoded NUL", "/a%00b"},
		{"raw NUL", "/a\x00b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.raw)
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("CleanPath(%q) = %q, %v; want ErrInvalidPath", tc.raw, got, err)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name                 string
		target, host, remote string
		rawPath              string // overrides URL.RawPath when set
		wantPath, wantHost   string
		wantRemote           string
	}{
		{name: "plain", target: "/a/b", host: "example.com", remote: "10.0.0.1:1234",
			wantPath: "/a/b", wantHost: "example.com", wantRemote: "10.0.0.1"},
		{name: "host port and case", target: "/", host: "API.Example.COM:8443", remote: "10.0.0.1:1",
			wantPath: "/", wantHost: "api.example.com", wantRemote: "10.0.0.1"},
		{name: "ipv6 host and peer", target: "/", host: "[::1]:8080", remote: "[2001:db8::1]:443",
			wantPath: "/", wantHost: "::1", wantRemote: "2001:db8::1"},
		{name: "trailing dot host", target: "/", host: "example.com.", remote: "10.0.0.1:1",
			wantPath: "/", wantHost: "example.com", wantRemote: "10.0.0.1"},
		{name: "mapped peer", target: "/", host: "h", remote: "[::ffff:10.0.0.1]:1",
			wantPath: "/", wantHost: "h", wantRemote: "10.0.0.1"},
		{name: "bad peer", target: "/", host: "h", remote: "pipe",
			wantPath: "/", wantHost: "h", wantRemote: "invalid IP"},
		{name: "dot segments", target: "/api/../admin", host: "h", remote: "10.0.0.1:1",
			wantPath: "/admin", wantHost: "h", wantRemote: "10.0.0.1"},
		{name: "encoded slash via RawPath", target: "/api%2F..%2Fadmin", host: "h", remote: "10.0.0.1:1",
			wantPath: "/admin", wantHost: "h", wantRemote: "10.0.0.1"},
		{name: "percent in decoded path is not decoded again", target: "/a/%252e%252e/b", host: "h", remote: "10.0.0.1:1",
			wantPath: "/a/%2e%2e/b", wantHost: "h", wantRemote: "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			r.Host, r.RemoteAddr = tc.host, tc.remote
			var in Input
			if err := in.Prepare(r); err != nil {
				t.Fatal(err)
			}
			if in.Path != tc.wantPath || in.Host != tc.wantHost || in.Remote.String() != tc.wantRemote {
				t.Errorf("got path %q host %q remote %v; want %q %q %s", in.Path, in.Host, in.Remote, tc.wantPath, tc.wantHost, tc.wantRemote)
			}
		})
	}
}

func TestPrepareInvalidPath(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL = &url.URL{Path: "/a%zz", RawPath: "/a%zz"}
	var in Input
	if err := in.Prepare(r); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("Prepare(/a%%zz) = %v, want ErrInvalidPath", err)
	}
}

func TestPrepareDoesNotAllocate(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com/svc/users/42", nil)
	var in Input
	allocs := testing.AllocsPerRun(100, func() {
		if err := in.Prepare(r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Prepare allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkPrepare(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com/svc/users/42", nil)
	var in Input
	b.ReportAllocs()
	for b.Loop() {
		if err := in.Prepare(r); err != nil {
			b.Fatal(err)
		}
	}
}
