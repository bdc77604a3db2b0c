package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/route"
)

// maxForwards bounds how often one request may be forwarded through the
// table again (fallbacks that forward to routes with fallbacks).
const maxForwards = 4

// ForwardLoop is the reason of the 508 answered when forwards loop.
const ForwardLoop = "forward_loop"

type forwardsKey struct{}

// Forward routes r, an outbound request already prepared by the proxy, through
// t again as if it had arrived at r.URL's path: it matches a route and runs
// that route's chain. The request's exchange now records the new route's
// path variables and upstream (its RouteID stays the route the client matched).
func (t *Table) Forward(r *http.Request) (*http.Response, error) {
	n, _ := r.Context().Value(forwardsKey{}).(int)
	if n >= maxForwards {
		return nil, &exchange.Error{Status: http.StatusLoopDetected, Reason: ForwardLoop, Err: errors.New("too many forwards")}
	}
	var in route.Input
	if err := in.Prepare(r); err != nil {
		return nil, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.BadRequest, Err: err}
	}
	rt, ok := t.Match.Match(&in)
	if !ok {
		return nil, &exchange.Error{Status: http.StatusNotFound, Reason: exchange.NoRoute, Err: errors.New("no route matches forward to " + in.Path)}
	}
	if ex := exchange.From(r.Context()); ex != nil {
		ex.Upstream = rt.Upstream
		ex.Vars = ex.Vars[:0]
		for j := 0; j < in.Vars.Len(); j++ {
			name, v := in.Vars.At(j)
			ex.Vars = append(ex.Vars, exchange.Var{Name: name, Value: v})
		}
	}
	out := r.WithContext(context.WithValue(r.Context(), forwardsKey{}, n+1))
	out.URL = &url.URL{Scheme: "http", Path: in.Path, RawQuery: r.URL.RawQuery}
	out.Host = ""
	return rt.Chain.RoundTrip(out)
}
