package route

import (
	"fmt"
	"net/http"
	"testing"
)

// typicalTable builds n routes as a gateway config typically has them: per
// service, a versioned API route on its own host with a method list and a
// tenant header, a route with a path variable, and a subtree; the last
// route is a host-only catch-all.
func typicalTable(t testing.TB, n int) *Table {
	specs := make([]routeSpec, 0, n)
	for i := 0; len(specs) < n-1; i++ {
		specs = append(specs,
			routeSpec{id: fmt.Sprintf("svc%d-v2", i), predicates: []string{
				fmt.Sprintf("Path=/svc%d/v2/**", i), fmt.Sprintf("Host=svc%d.example.com,**.svc%d.example.com", i, i),
				"Method=GET,POST", `Header=X-Tenant, [a-z]+`}},
			routeSpec{id: fmt.Sprintf("svc%d-item", i), predicates: []string{fmt.Sprintf("Path=/svc%d/items/{id}", i), "Method=GET,HEAD"}},
			routeSpec{id: fmt.Sprintf("svc%d", i), predicates: []string{fmt.Sprintf("Path=/svc%d/**", i)}},
		)
	}
	specs = append(specs[:n-1], routeSpec{id: "static", predicates: []string{"Host=static.example.com"}})
	return mustTable(t, specs)
}

// typicalRequests are the requests the cost benchmarks match against
// typicalTable, each with the route it must take.
var typicalRequests = []struct {
	name, method, target, tenant string
	want                         string
}{
	{"path+host+method+header", http.MethodPost, "http://eu.svc2.example.com/svc2/v2/orders", "acme", "svc2-v2"},
	{"path-variable", http.MethodGet, "/svc2/items/42", "", "svc2-item"},
	{"subtree", http.MethodGet, "/svc1/a/b/c", "", "svc1"},
	{"host-catch-all", http.MethodGet, "http://static.example.com/logo.png", "", "static"},
}

func typicalInput(t testing.TB, method, target, tenant string) *Input {
	return mustInput(t, method, target, func(r *http.Request) {
		if tenant != "" {
			r.Header.Set("X-Tenant", tenant)
		}
	})
}

// TestTypicalMatchDoesNotAllocate holds Match with Path, Host, Method and
// Header predicates to zero allocations, on tables of 10 and 200 routes.
func TestTypicalMatchDoesNotAllocate(t *testing.T) {
	for _, n := range []int{10, 200} {
		tab := typicalTable(t, n)
		for _, tc := range typicalRequests {
			in := typicalInput(t, tc.method, tc.target, tc.tenant)
			allocs := testing.AllocsPerRun(100, func() {
				if r, ok := tab.Match(in); !ok || r.ID != tc.want {
					t.Fatalf("%d routes, %s: matched %v, %v; want %s", n, tc.name, r, ok, tc.want)
				}
			})
			if allocs != 0 {
				t.Errorf("%d routes, %s: Match allocates %v times, want 0", n, tc.name, allocs)
			}
		}
	}
}

// BenchmarkMatchTypical is Table.Match on tables of 10 and 200 typical
// routes (typicalTable).
//
//	go test -run '^$' -bench MatchTypical -benchmem ./internal/route
func BenchmarkMatchTypical(b *testing.B) {
	for _, n := range []int{10, 200} {
		tab := typicalTable(b, n)
		for _, tc := range typicalRequests {
			b.Run(fmt.Sprintf("%d/%s", n, tc.name), func(b *testing.B) {
				in := typicalInput(b, tc.method, tc.target, tc.tenant)
				b.ReportAllocs()
				for b.Loop() {
					if r, ok := tab.Match(in); !ok || r.ID != tc.want {
						b.Fatalf("matched %v, %v; want %s", r, ok, tc.want)
					}
				}
			})
		}
	}
}
