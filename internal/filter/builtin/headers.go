package builtin

import (
	"net/http"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

func nameValue(a args.Args) (string, string, error) {
	n, err := a.Required("name")
	if err != nil {
		return "", "", err
	}
	v, err := a.String("value", "")
	return http.CanonicalHeaderKey(n), v, err
}

func requestHeader(edit func(h http.Header, name, value string)) filter.Factory {
	return filter.Factory{Fields: []string{"name", "value"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, v, err := nameValue(a)
		if err != nil {
			return nil, err
		}
		return filter.Request(func(r *http.Request) { edit(r.Header, n, expandField(v, exchange.From(r.Context()))) }), nil
	}}
}

func responseHeader(edit func(h http.Header, name, value string)) filter.Factory {
	return filter.Factory{Fields: []string{"name", "value"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, v, err := nameValue(a)
		if err != nil {
			return nil, err
		}
		return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
			val := expandField(v, exchange.From(r.Context()))
			resp, err := next.RoundTrip(r)
			if err == nil {
				edit(resp.Header, n, val)
			}
			return resp, err
		}), nil
	}}
}

func removeHeader(response bool) filter.Factory {
	return filter.Factory{Fields: []string{"name"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, err := a.Required("name")
		if err != nil {
			return nil, err
		}
		n = http.CanonicalHeaderKey(n)
		if response {
			return filter.Response(func(resp *http.Response) { resp.Header.Del(n) }), nil
		}
		return filter.Request(func(r *http.Request) { r.Header.Del(n) }), nil
	}}
}

var (
	addRequestHeader     = requestHeader(func(h http.Header, n, v string) { h.Add(n, v) })
	setRequestHeader     = requestHeader(func(h http.Header, n, v string) { h.Set(n, v) })
	addResponseHeader    = responseHeader(func(h http.Header, n, v string) { h.Add(n, v) })
	setResponseHeader    = responseHeader(func(h http.Header, n, v string) { h.Set(n, v) })
	removeRequestHeader  = removeHeader(false)
	removeResponseHeader = removeHeader(true)
)

// PreserveHostHeader sends the client's Host to the backend instead of the endpoint's.
var preserveHost = filter.Factory{New: func(args.Args, *filter.Env) (filter.Filter, error) {
	return filter.Request(func(r *http.Request) {
		if ex := exchange.From(r.Context()); ex != nil {
			r.Host = ex.Host
		}
	}), nil
}}

// SetRequestHostHeader=example.org sends that Host to the backend.
var setRequestHost = filter.Factory{Fields: []string{"host"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	h, err := a.Required("host")
	if err != nil {
		return nil, err
	}
	return filter.Request(func(r *http.Request) { r.Host = expand(h, exchange.From(r.Context())) }), nil
}}
