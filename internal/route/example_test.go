package route_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/route"
)

// Example builds a table from shortcut predicates, as the gateway does from
// its config, and routes one request.
func Example() {
	registry := route.Predicates()
	build := func(id string, shortcuts ...args.Spec) route.Route {
		r := route.Route{ID: id}
		for _, s := range shortcuts {
			f := registry[s.Name]
			a, err := s.Bind(f.Fields)
			if err != nil {
				panic(err)
			}
			p, err := f.New(a, &route.Env{RouteID: id})
			if err != nil {
				panic(err)
			}
			r.Predicates = append(r.Predicates, p)
		}
		return r
	}
	routes := []route.Route{
		build("user", args.Spec{Name: "Path", Positional: []string{"/users/{id}"}},
			args.Spec{Name: "Method", Positional: []string{"GET"}}),
		build("files", args.Spec{Name: "Path", Positional: []string{"/files/{*rest}"}}),
	}
	table, err := route.NewTable(routes)
	if err != nil {
		panic(err)
	}

	var in route.Input
	if err := in.Prepare(httptest.NewRequest("GET", "/static/../files/a/b.txt", nil)); err != nil {
		panic(err)
	}
	rt, ok := table.Match(&in)
	rest, _ := in.Vars.Get("rest")
	fmt.Println(rt.ID, ok, in.Path, rest)
	// Output: files true /files/a/b.txt /a/b.txt
}
