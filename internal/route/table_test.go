package route

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

// routeSpec is a route in test shorthand: predicates in shortcut form.
type routeSpec struct {
	id         string
	order      int
	predicates []string
}

func mustTable(t testing.TB, specs []routeSpec) *Table {
	t.Helper()
	routes := make([]Route, len(specs))
	for i, s := range specs {
		routes[i] = Route{ID: s.id, Order: s.order}
		for _, p := range s.predicates {
			routes[i].Predicates = append(routes[i].Predicates, mustPredicate(t, p, &Env{RouteID: s.id}))
		}
	}
	tab, err := NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestTableMatch(t *testing.T) {
	routes := []routeSpec{
		{id: "users", predicates: []string{"Path=/api/users/{id}", "Method=GET"}},
		{id: "api", predicates: []string{"Path=/api/**"}},
		{id: "admin-first", order: -1, predicates: []string{"Path=/admin/**", "Header=X-Admin"}},
		{id: "wild-seg", predicates: []string{"Path=/{tenant}/health"}},
		{id: "host-only", predicates: []string{"Host=static.example.com"}},
		{id: "late-api", order: 10, predicates: []string{"Path=/api/**"}},
		{id: "admin", predicates: []string{"Path=/admin/**"}},
		{id: "fallback", order: 100},
	}
	tab := mustTable(t, routes)
	tests := []struct {
		name     string
		method   string
		target   string
		edit     func(*http.Request)
		want     string
		wantVars string
	}{
		{name: "first in declaration order", target: "/api/users/7", want: "users", wantVars: "id=7"},
		{name: "later route when earlier fails", method: "POST", target: "/api/users/7", want: "api"},
		{name: "lower order wins", target: "/admin/x", edit: header("X-Admin", "1"), want: "admin-first"},
		{name: "order then declaration", target: "/admin/x", want: "admin"},
		{name: "catch-all wildcard first segment", target: "/acme/health", want: "wild-seg", wantVars: "tenant=acme"},
		{name: "catch-all beats later indexed", target: "/api/health", want: "api"},
		{name: "host route", target: "http://static.example.com/img/a.png", want: "host-only"},
		{name: "fallback", target: "/nothing", want: "fallback"},
		{name: "path cleaned before matching", target: "/x/../api/users/9", want: "users", wantVars: "id=9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := mustInput(t, cmpOr(tc.method, http.MethodGet), tc.target, tc.edit)
			i, ok := matchIndex(tab, in)
			if !ok {
				t.Fatalf("no match, want %s", tc.want)
			}
			if got := routes[i].id; got != tc.want {
				t.Errorf("matched %s, want %s", got, tc.want)
			}
			if got := varsString(&in.Vars); got != tc.wantVars {
				t.Errorf("vars = %q, want %q", got, tc.wantVars)
			}
		})
	}
	if tab.Len() != len(routes) {
		t.Errorf("Len = %d, want %d", tab.Len(), len(routes))
	}
}

func TestTableNoMatch(t *testing.T) {
	tab := mustTable(t, []routeSpec{{id: "a", predicates: []string{"Path=/a/{x}", "Method=POST"}}})
	in := mustInput(t, http.MethodGet, "/a/1", nil)
	if i, ok := matchIndex(tab, in); ok {
		t.Fatalf("matched %d, want no match", i)
	}
	if in.Vars.Len() != 0 {
		t.Errorf("vars of a failed route left behind: %q", varsString(&in.Vars))
	}
	empty, err := NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Match(in); ok {
		t.Error("empty table matched")
	}
}

// TestPathSafety checks that no spelling of a path outside /api reaches a
// route limited to /api, and no spelling of /admin escapes the admin route.
func TestPathSafety(t *testing.T) {
	tab := mustTable(t, []routeSpec{
		{id: "admin", predicates: []string{"Path=/admin/**", "Header=X-Admin-Token"}},
		{id: "api", predicates: []string{"Path=/api/**"}},
	})
	for _, target := range []string{
		"/api/../admin",
		"//admin",
		"/api/%2e%2e/admin",
		"/api/%2E%2E/admin",
		"/api%2F..%2Fadmin",
		"/api/..%2Fadmin",
		"/api/..;/admin",
		"/api/.%2e/admin",
		"/api/./../admin",
	} {
		t.Run(target, func(t *testing.T) {
			in := mustInput(t, http.MethodGet, target, nil)
			if i, ok := matchIndex(tab, in); ok {
				t.Errorf("%s (cleaned %q) matched route %d", target, in.Path, i)
			}
			if in.Path != "/admin" {
				t.Errorf("%s cleaned to %q, want /admin", target, in.Path)
			}
		})
	}
	t.Run("admin with params still needs the admin route", func(t *testing.T) {
		in := mustInput(t, http.MethodGet, "/admin;x=1/secret", nil)
		if _, ok := matchIndex(tab, in); ok {
			t.Errorf("/admin;x=1/secret matched without X-Admin-Token")
		}
	})
	t.Run("invalid escape", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path, r.URL.RawPath = "/api/%zz", "/api/%zz"
		var in Input
		if err := in.Prepare(r); err == nil {
			t.Errorf("Prepare(/api/%%zz) succeeded with path %q", in.Path)
		}
	})
}

func TestTableConcurrentMatch(t *testing.T) {
	tab := benchTable(t, 100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				n := (g*500 + i) % 50
				var in Input
				if err := in.Prepare(httptest.NewRequest(http.MethodGet, fmt.Sprintf("/svc%d/users/%d", n, i), nil)); err != nil {
					t.Error(err)
					return
				}
				idx, ok := matchIndex(tab, &in)
				if !ok || idx != 2*n {
					t.Errorf("/svc%d/users/%d matched %d, want %d", n, i, idx, 2*n)
					return
				}
				if id, _ := in.Vars.Get("id"); id != fmt.Sprint(i) {
					t.Errorf("id = %q, want %d", id, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchTable builds n/2 services, each with "/svc{i}/users/{id}" (GET) and
// "/svc{i}/**", plus one catch-all Host route at the end.
func benchTable(t testing.TB, n int) *Table {
	specs := make([]routeSpec, 0, n+1)
	for i := range n / 2 {
		specs = append(specs,
			routeSpec{id: fmt.Sprintf("svc%d-users", i), predicates: []string{fmt.Sprintf("Path=/svc%d/users/{id}", i), "Method=GET,HEAD"}},
			routeSpec{id: fmt.Sprintf("svc%d", i), predicates: []string{fmt.Sprintf("Path=/svc%d/**", i)}},
		)
	}
	specs = append(specs, routeSpec{id: "static", predicates: []string{"Host=static.example.com"}})
	return mustTable(t, specs)
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tab := benchTable(t, 1000)
	in := mustInput(t, http.MethodGet, "/svc498/users/42", nil)
	allocs := testing.AllocsPerRun(100, func() {
		if i, ok := matchIndex(tab, in); !ok || i != 996 {
			t.Fatalf("matched %d, %v", i, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times, want 0", allocs)
	}
}

func BenchmarkMatch1000(b *testing.B) {
	tab := benchTable(b, 1000)
	tests := []struct {
		name, target string
		want         int
	}{
		{"users", "/svc498/users/42", 996},
		{"subtree", "/svc499/a/b/c", 999},
		{"catch-all", "http://static.example.com/x", 1000},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			in := mustInput(b, http.MethodGet, tc.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				if i, ok := matchIndex(tab, in); !ok || i != tc.want {
					b.Fatalf("matched %d, %v; want %d", i, ok, tc.want)
				}
			}
		})
	}
}

// BenchmarkPrepareMatch1000 is the whole per-request cost: Prepare + Match.
func BenchmarkPrepareMatch1000(b *testing.B) {
	tab := benchTable(b, 1000)
	r := httptest.NewRequest(http.MethodGet, "/svc498/users/42", nil)
	var in Input
	b.ReportAllocs()
	for b.Loop() {
		if err := in.Prepare(r); err != nil {
			b.Fatal(err)
		}
		if _, ok := matchIndex(tab, &in); !ok {
			b.Fatal("no match")
		}
	}
}

func TestNewTableErrors(t *testing.T) {
	build := func(preds ...string) []Predicate {
		var ps []Predicate
		for _, p := range preds {
			ps = append(ps, mustPredicate(t, p, nil))
		}
		return ps
	}
	tests := []struct {
		name    string
		routes  []Route
		wantErr string
	}{
		{"all weights zero", []Route{
			{ID: "a", Predicates: build("Weight=g, 0")},
			{ID: "b", Predicates: build("Weight=g, 0")},
		}, `Weight group "g": all weights are 0`},
		{"two weights of one group", []Route{
			{ID: "a", Predicates: build("Weight=g, 1", "Weight=g, 2")},
		}, `route "a": two Weight predicates for group "g"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTable(tc.routes)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestTableMatchesLinearScan compares the indexed Match with trying every
// route in (Order, index) order.
func TestTableMatchesLinearScan(t *testing.T) {
	patterns := []string{
		"/", "/a", "/a/", "/a/**", "/a/{x}", "/a/b/{*rest}", "/{x}/b", "/**", "/b/*", "/a*/c",
		"/b/{id:\\d+}", "/c/{n}.{ext}", "/a,/b", "/a/b,/{x}", "/c/**", "/?",
	}
	paths := []string{
		"/", "/a", "/a/", "/a/b", "/a/b/c", "/b", "/b/", "/b/1", "/b/x", "/c/f.txt", "/ab/c",
		"/x/b", "/a;p=1/b", "/z", "/c", "/c/",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var specs []routeSpec
		for i := range 1 + rng.IntN(12) {
			s := routeSpec{id: fmt.Sprint(i), order: rng.IntN(3) - 1}
			if rng.IntN(5) > 0 {
				s.predicates = append(s.predicates, "Path="+patterns[rng.IntN(len(patterns))])
			}
			if rng.IntN(4) == 0 {
				s.predicates = append(s.predicates, "Method=GET")
			}
			specs = append(specs, s)
		}
		tab := mustTable(t, specs)
		byRank := slices.Clone(tab.byRank)
		for _, p := range paths {
			for _, method := range []string{"GET", "POST"} {
				in := mustInput(t, method, p, nil)
				got, gotOK := matchIndex(tab, in)
				want, wantOK := -1, false
				for _, i := range byRank {
					if matchAll(tab.routes[i].Predicates, in) {
						want, wantOK = i, true
						break
					}
				}
				if got != want || gotOK != wantOK {
					t.Fatalf("round %d, %s %s: Match = %d, %v; linear scan = %d, %v; routes %v", round, method, p, got, gotOK, want, wantOK, specs)
				}
			}
		}
	}
}

func TestPredicatesDoNotAllocate(t *testing.T) {
	env := &Env{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	in := mustInput(t, http.MethodGet, "http://api.eu.example.com/users/42/files/a/b?x=1&debug=yes",
		remote("10.0.0.1:1", "X-Request-Id", "123", "Cookie", "a=1; session=abc", "X-Forwarded-For", "192.168.1.7, 10.0.0.2"))
	for _, s := range []string{
		`Path=/users/{id:\d+}/files/{*rest}`,
		"Path=/users/{id}/**",
		"Host={sub}.eu.example.com",
		"Host=**.example.com",
		"Method=POST,GET",
		`Header=X-Request-Id, \d+`,
		"Query=debug, y.s",
		"Cookie=session, [a-c]+",
		"RemoteAddr=10.0.0.0/8",
		"XForwardedRemoteAddr=192.168.1.0/24",
		"Weight=g, 1",
		"After=2017-01-20T17:42:47.789-07:00[America/Denver]",
	} {
		t.Run(s, func(t *testing.T) {
			p := mustPredicate(t, s, env)
			allocs := testing.AllocsPerRun(100, func() {
				in.Vars = Vars{}
				if !p.Match(in) {
					t.Fatalf("%s did not match", s)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: %v allocations per Match, want 0", s, allocs)
			}
		})
	}
}
