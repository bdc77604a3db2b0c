package authn

import (
	"net/http"
	"testing"
)

func TestSourceToken(t *testing.T) {
	tests := []struct {
		desc   string
		src    Source
		header string
		cookie string
		want   string
	}{
		{desc: "bearer", src: Source{Header: "Authorization", Scheme: "Bearer"}, header: "Bearer abc", want: "abc"},
		{desc: "scheme case-insensitive", src: Source{Header: "Authorization", Scheme: "Bearer"}, header: "bearer abc", want: "abc"},
		{desc: "wrong scheme", src: Source{Header: "Authorization", Scheme: "Bearer"}, header: "Basic abc", want: ""},
		{desc: "scheme only", src: Source{Header: "Authorization", Scheme: "Bearer"}, header: "Bearer", want: ""},
		{desc: "no scheme", src: Source{Header: "Authorization"}, header: "abc", want: "abc"},
		{desc: "cookie fallback", src: Source{Header: "Authorization", Scheme: "Bearer", Cookie: "sid"}, cookie: "xyz", want: "xyz"},
		{desc: "header wins over cookie", src: Source{Header: "Authorization", Scheme: "Bearer", Cookie: "sid"}, header: "Bearer abc", cookie: "xyz", want: "abc"},
		{desc: "nothing", src: Source{Header: "Authorization", Scheme: "Bearer", Cookie: "sid"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "sid", Value: tc.cookie})
			}
			if got := tc.src.Token(r); got != tc.want {
				t.Errorf("Token = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	a, err := NewAllowList([]string{"/public/**", "/login", "/static/*.js"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc string
		path string
		want bool
	}{
		{desc: "prefix itself", path: "/public", want: true},
		{desc: "below prefix", path: "/public/a/b", want: true},
		{desc: "prefix lookalike", path: "/publicity", want: false},
		{desc: "exact", path: "/login", want: true},
		{desc: "exact with suffix", path: "/login/x", want: false},
		{desc: "glob", path: "/static/app.js", want: true},
		{desc: "glob stays in segment", path: "/static/a/app.js", want: false},
		{desc: "other", path: "/api", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := a.Match(tc.path); got != tc.want {
				t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	if _, err := NewAllowList([]string{"public"}); err == nil {
		t.Error("a relative pattern was accepted")
	}
}

func TestValue(t *testing.T) {
	tests := []struct {
		desc string
		in   any
		want string
		ok   bool
	}{
		{desc: "string", in: "alice", want: "alice", ok: true},
		{desc: "number", in: 42.0, want: "42", ok: true},
		{desc: "bool", in: true, want: "true", ok: true},
		{desc: "list", in: []any{"a", "b", 3.0}, want: "a,b,3", ok: true},
		{desc: "object", in: map[string]any{"k": "v"}, want: `{"k":"v"}`, ok: true},
		{desc: "control characters dropped", in: "a\r\nX-Evil: 1", want: "aX-Evil: 1", ok: true},
		{desc: "nil", in: nil, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := Value(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Value(%v) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}
