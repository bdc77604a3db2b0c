package route

import (
	"path"
	"strings"
	"testing"
)

// maxFuzzLen bounds fuzz inputs: request paths are short, and the fuzzer
// spends minutes minimizing long inputs (O(n²) runs of O(n) work).
const maxFuzzLen = 512

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "", "/a/b/", "/api/../admin", "//admin", "/a/./b/", "/api%2F..%2Fadmin",
		"/api/%2e%2e/admin", "/api/..;/admin", "/a/%252e%252e/b", "/a%zz", "/a%00", "a/b",
		"/..", "/a/b/..", "/.;x/", "/%2F%2F", "/a/...//./b;c/../d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > maxFuzzLen {
			return
		}
		out, err := CleanPath(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("CleanPath(%q) = %q: does not start with /", raw, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("CleanPath(%q) = %q: contains //", raw, out)
		}
		if strings.IndexByte(out, 0) >= 0 {
			t.Fatalf("CleanPath(%q) = %q: contains NUL", raw, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if isDotSegment(seg) {
				t.Fatalf("CleanPath(%q) = %q: has dot segment %q", raw, out, seg)
			}
		}
		if !isClean(out) {
			t.Fatalf("CleanPath(%q) = %q: isClean is false", raw, out)
		}
		if strings.IndexByte(out, '%') < 0 {
			if again, err := CleanPath(out); err != nil || again != out {
				t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v", raw, out, out, again, err)
			}
		}
		// Without escapes and params, the result names the same file as
		// path.Clean's (which drops trailing slashes).
		if !strings.ContainsAny(raw, "%;") {
			if want := path.Clean("/" + raw); path.Clean(out) != want {
				t.Fatalf("CleanPath(%q) = %q, path.Clean gives %q", raw, out, want)
			}
		}
	})
}

func FuzzPathPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"/api/**", "/api/a/b"},
		{"/red/{segment}", "/red/1/"},
		{"/files/{*rest}", "/files/a/b"},
		{`/users/{id:\d+}`, "/users/42"},
		{"/files/{name}.{ext}", "/files/a.b.c"},
		{"/img/*.png", "/img/x.png"},
		{"/a/b?d/*", "/a/bcd/"},
		{`/zip/{code:\d{5}}`, "/zip/12345"},
		{"/a/{id", "/a/1"},
		{"/", "/"},
		{"/a;b", "/a;b"},
		{"/{*x}", "/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, reqPath string) {
		if len(pattern) > maxFuzzLen || len(reqPath) > maxFuzzLen {
			return
		}
		p, err := compilePathPattern(pattern, true)
		if err != nil {
			return
		}
		var vars Vars
		p.match(reqPath, &vars) // must not panic, whatever the path
		if vars.Len() > MaxVars {
			t.Fatalf("%d vars", vars.Len())
		}
		if strings.ContainsAny(pattern, "{}*?") {
			return
		}
		self := "/" + strings.TrimPrefix(pattern, "/")
		vars = Vars{}
		if !p.match(self, &vars) {
			t.Fatalf("literal pattern %q does not match %q", pattern, self)
		}
		if key, ok := p.firstLiteral(); !ok || key != firstSegment(self) {
			t.Fatalf("pattern %q: index key %q, %v; path %q has first segment %q", pattern, key, ok, self, firstSegment(self))
		}
	})
}
