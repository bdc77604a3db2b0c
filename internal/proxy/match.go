package proxy

import (
	"net/http"
	"sync"

	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/route"
)

// inputs recycles route.Input: predicates are interfaces, so an Input handed
// to them escapes to the heap, and would otherwise be allocated per request.
var inputs = sync.Pool{New: func() any { return new(route.Input) }}

// match prepares r and matches it against t. On a match it returns the
// route, and adds the route's path and host variables to ex.Vars.
// path is the cleaned request path, also when nothing matches. err is
// non-nil for a path that cannot be cleaned (400).
func match(t *route.Table, r *http.Request, ex *exchange.Exchange) (rt *route.Route, path string, ok bool, err error) {
	in := inputs.Get().(*route.Input)
	if err = in.Prepare(r); err == nil {
		path = in.Path
		if rt, ok = t.Match(in); ok {
			for j := 0; j < in.Vars.Len(); j++ {
				n, v := in.Vars.At(j)
				ex.Vars = append(ex.Vars, exchange.Var{Name: n, Value: v})
			}
		}
	}
	*in = route.Input{} // keep neither the request nor its strings alive
	inputs.Put(in)
	return rt, path, ok, err
}
