package builtin

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// AddRequestParameter=red,blue appends red=blue to the query (values may use {vars}).
var addRequestParameter = filter.Factory{Fields: []string{"name", "value"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Required("name")
	if err != nil {
		return nil, err
	}
	v, err := a.String("value", "")
	if err != nil {
		return nil, err
	}
	return filter.Request(func(r *http.Request) {
		p := url.QueryEscape(n) + "=" + url.QueryEscape(expand(v, exchange.From(r.Context())))
		if r.URL.RawQuery == "" {
			r.URL.RawQuery = p
		} else {
			r.URL.RawQuery += "&" + p
		}
	}), nil
}}

// RemoveRequestParameter=red removes every red parameter from the query.
var removeRequestParameter = filter.Factory{Fields: []string{"name"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Required("name")
	if err != nil {
		return nil, err
	}
	return filter.Request(func(r *http.Request) {
		r.URL.RawQuery, _ = editQuery(r.URL.RawQuery, n, "", false)
	}), nil
}}

// RewriteRequestParameter=campaign,fall2023 replaces the value of campaign,
// when the query has it, by one value.
var rewriteRequestParameter = filter.Factory{Fields: []string{"name", "replacement"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Required("name")
	if err != nil {
		return nil, err
	}
	repl, err := a.String("replacement", "")
	if err != nil {
		return nil, err
	}
	return filter.Request(func(r *http.Request) {
		r.URL.RawQuery, _ = editQuery(r.URL.RawQuery, n, repl, true)
	}), nil
}}

// editQuery removes the parameters called name from a raw query, keeping
// the others as they were written; with replace, the first one becomes
// name=value instead. It reports whether name was there.
func editQuery(raw, name, value string, replace bool) (string, bool) {
	if raw == "" {
		return raw, false
	}
	var b strings.Builder
	found := false
	for p := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			if replace && !found {
				appendParam(&b, url.QueryEscape(name)+"="+url.QueryEscape(value))
			}
			found = true
			continue
		}
		appendParam(&b, p)
	}
	if !found {
		return raw, false
	}
	return b.String(), true
}

func appendParam(b *strings.Builder, p string) {
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	b.WriteString(p)
}
