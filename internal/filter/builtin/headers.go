package builtin

import (
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

func nameValue(a args.Args) (string, headerValue, error) {
	n, err := a.Required("name")
	if err != nil {
		return "", headerValue{}, err
	}
	v, err := a.String("value", "")
	return http.CanonicalHeaderKey(n), newHeaderValue(v), err
}

// headerValue is a value a filter puts into a header: a template with
// {variables}, expanded per request, or a constant, whose one-value slice
// is made once and shared by every request. Sharing is safe because header
// value slices are never written in place (see filter.Filter), and their
// capacity is their length, so that an append copies.
type headerValue struct {
	template string
	fixed    []string // nil when template has variables
}

func newHeaderValue(t string) headerValue {
	if strings.Contains(t, "{") {
		return headerValue{template: t}
	}
	return headerValue{template: t, fixed: []string{t}}
}

// values returns the value for r's exchange as a one-value slice.
func (v headerValue) values(ex *exchange.Exchange) []string {
	if v.fixed != nil {
		return v.fixed
	}
	return []string{expandField(v.template, ex)}
}

// setValues replaces h[name] with vals.
func setValues(h http.Header, name string, vals []string) { h[name] = vals }

// addValues appends vals to h[name]. It never writes into the array of
// the slice already there, which may be shared.
func addValues(h http.Header, name string, vals []string) {
	old := h[name]
	if len(old) == 0 {
		h[name] = vals
		return
	}
	h[name] = append(old[:len(old):len(old)], vals...)
}

func requestHeader(edit func(h http.Header, name string, vals []string)) filter.Factory {
	return filter.Factory{Fields: []string{"name", "value"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, v, err := nameValue(a)
		if err != nil {
			return nil, err
		}
		return filter.Request(func(r *http.Request) { edit(r.Header, n, v.values(exchange.From(r.Context()))) }), nil
	}}
}

func responseHeader(edit func(h http.Header, name string, vals []string)) filter.Factory {
	return filter.Factory{Fields: []string{"name", "value"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, v, err := nameValue(a)
		if err != nil {
			return nil, err
		}
		return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
			vals := v.values(exchange.From(r.Context()))
			resp, err := next.RoundTrip(r)
			if err == nil {
				edit(resp.Header, n, vals)
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
			return filter.Response(func(resp *http.Response) { delete(resp.Header, n) }), nil
		}
		return filter.Request(func(r *http.Request) { delete(r.Header, n) }), nil
	}}
}

var (
	addRequestHeader     = requestHeader(addValues)
	setRequestHeader     = requestHeader(setValues)
	addResponseHeader    = responseHeader(addValues)
	setResponseHeader    = responseHeader(setValues)
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
