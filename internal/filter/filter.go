// Package filter defines how a route's filters act on a request and its
// response. A filter wraps the rest of the chain the way an
// http.RoundTripper middleware does: it may change the request, call next
// (at most once), change the response, or answer by itself.
package filter

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/redisconn"
)

// A Filter does one thing to a request or its response. It is built once per
// route and must be safe for concurrent use. To answer without calling next,
// return a response (e.g. a redirect) or an *exchange.Error.
//
// A header's value slice may be shared with other requests (the header
// filters put the same slice of a constant value into every request): to
// change values, put a new slice into the header, never write into the
// one there.
type Filter interface {
	RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error)
}

// Func adapts a function to a Filter.
type Func func(r *http.Request, next http.RoundTripper) (*http.Response, error)

func (f Func) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	return f(r, next)
}

// Request adapts a request-only edit to a Filter.
type Request func(r *http.Request)

func (f Request) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	f(r)
	return next.RoundTrip(r)
}

// Response adapts a response-only edit (headers, status) to a Filter.
type Response func(resp *http.Response)

func (f Response) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	resp, err := next.RoundTrip(r)
	if err == nil {
		f(resp)
	}
	return resp, err
}

// A Factory builds one kind of filter from its arguments. Fields lists the
// argument names in shortcut order (see args.Spec.Bind).
type Factory struct {
	Fields []string
	New    func(a args.Args, env *Env) (Filter, error)
}

// Env is what a filter may use beyond its own arguments. The gateway builds
// one per route; filters must not keep a pointer to it, only what they read.
type Env struct {
	RouteID string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	Log            *slog.Logger
	// Forward routes r through the gateway's routing table again, as if it
	// had arrived with r.URL's path and query (a "forward:" fallback). It is
	// nil where there is no table, e.g. when a filter is built on its own.
	Forward func(r *http.Request) (*http.Response, error)
	// Redis is the shared Redis client (the config's redis block); nil when
	// none is configured. It outlives the filter across reloads.
	Redis *redisconn.Client
}

// Chain returns a RoundTripper that runs filters in order, then last.
// Building the chain allocates; running it does not.
func Chain(filters []Filter, last http.RoundTripper) http.RoundTripper {
	rt := last
	for i := len(filters) - 1; i >= 0; i-- {
		rt = link{filters[i], rt}
	}
	return rt
}

type link struct {
	f    Filter
	next http.RoundTripper
}

func (l link) RoundTrip(r *http.Request) (*http.Response, error) { return l.f.RoundTrip(r, l.next) }

// RetryPolicy is what a Retry filter asks of its route's retry policy. The
// gateway applies it when it builds the route, so it costs nothing per
// request. Zero fields keep the route's own values.
type RetryPolicy struct {
	Attempts    int      // tries including the first
	Statuses    []int    // response codes retried (idempotent requests only)
	Methods     []string // methods retried once a request may have reached the backend
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// A Retrier is a filter that configures its route's retries (Spring's Retry).
type Retrier interface {
	Filter
	RetryPolicy() RetryPolicy
}
