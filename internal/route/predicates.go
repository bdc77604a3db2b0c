package route

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
)

// Env is what predicate factories may need from the gateway config besides
// their own arguments.
type Env struct {
	// TrustedProxies are the peers whose X-Forwarded-For entries are believed
	// (XForwardedRemoteAddr). Empty: no peer is trusted.
	TrustedProxies []netip.Prefix
	// RouteID is the route being built. The built-in predicates do not need
	// it (NewTable wires Weight groups); it is there for error messages and
	// for predicates that keep per-route state.
	RouteID string
	// Now returns the current time (After, Before, Between); nil means time.Now.
	Now func() time.Time
	// HostIncludePort makes Host patterns match the Host header with its
	// port, as Spring Cloud Gateway does (include-port, its default): a
	// pattern with a port matches that port only, one without a port
	// matches only requests whose Host header has none. Off: the port is
	// ignored on both sides.
	HostIncludePort bool
}

func (e *Env) now() func() time.Time {
	if e == nil || e.Now == nil {
		return time.Now
	}
	return e.Now
}

// A Factory builds one kind of predicate.
type Factory struct {
	// Fields lists the argument names in shortcut order, for args.Spec.Bind.
	// A final "name..." gathers the remaining values.
	Fields []string
	// New builds a predicate. Its errors name the argument and the offending
	// value, not the predicate: the caller prefixes that, as it does for
	// args.Spec.Bind errors ("Path: " + `pattern "/a/{id": missing "}"`).
	// env may be nil.
	New func(a args.Args, env *Env) (Predicate, error)
}

// Predicates returns a new registry of every predicate, keyed by its Spring
// Cloud Gateway name ("Path", "Host", ...). Names are case-sensitive.
func Predicates() map[string]Factory {
	return map[string]Factory{
		"Path": {
			Fields: []string{"patterns...", "matchTrailingSlash"},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				flag, err := a.String("matchTrailingSlash", "")
				if err != nil {
					return nil, err
				}
				return newPath(a.Strings("patterns"), flag)
			},
		},
		"Host": {
			Fields: []string{"patterns..."},
			New: func(a args.Args, env *Env) (Predicate, error) {
				return newHost(a.Strings("patterns"), env != nil && env.HostIncludePort)
			},
		},
		"Method": {
			Fields: []string{"methods..."},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newMethod(a.Strings("methods"))
			},
		},
		"Header": {
			Fields: []string{"header", "regexp"},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newNamedValue("header", a, newHeader)
			},
		},
		"Query": {
			Fields: []string{"param", "regexp"},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newNamedValue("param", a, newQuery)
			},
		},
		"Cookie": {
			Fields: []string{"name", "regexp"},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newNamedValue("name", a, newCookie)
			},
		},
		"RemoteAddr": {
			Fields: []string{"sources..."},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newRemoteAddr(a.Strings("sources"))
			},
		},
		"XForwardedRemoteAddr": {
			Fields: []string{"sources..."},
			New: func(a args.Args, env *Env) (Predicate, error) {
				var trusted []netip.Prefix
				if env != nil {
					trusted = env.TrustedProxies
				}
				return newXForwardedRemoteAddr(a.Strings("sources"), trusted)
			},
		},
		"Weight": {
			Fields: []string{"group", "weight"},
			New: func(a args.Args, _ *Env) (Predicate, error) {
				return newWeight(a)
			},
		},
		"After": {
			Fields: []string{"datetime"},
			New: func(a args.Args, env *Env) (Predicate, error) {
				return newTimeWindow("After", a, env)
			},
		},
		"Before": {
			Fields: []string{"datetime"},
			New: func(a args.Args, env *Env) (Predicate, error) {
				return newTimeWindow("Before", a, env)
			},
		},
		"Between": {
			Fields: []string{"datetime1", "datetime2"},
			New: func(a args.Args, env *Env) (Predicate, error) {
				return newTimeWindow("Between", a, env)
			},
		},
	}
}

// methodPredicate is Method: the request method is one of methods.
type methodPredicate struct {
	methods []string // upper case
}

func (p *methodPredicate) Match(in *Input) bool {
	for _, m := range p.methods {
		if in.Request.Method == m {
			return true
		}
	}
	return false
}

func newMethod(methods []string) (Predicate, error) {
	if len(methods) == 0 {
		return nil, errors.New("methods: required")
	}
	p := &methodPredicate{}
	for _, m := range methods {
		if m == "" || strings.IndexFunc(m, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return nil, fmt.Errorf("method %q is not an HTTP method", m)
		}
		p.methods = append(p.methods, strings.ToUpper(m))
	}
	return p, nil
}

// isTokenChar reports whether r may appear in an RFC 9110 token.
func isTokenChar(r rune) bool {
	return r < 0x7f && r > ' ' && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// valueMatcher matches a value fully against a regexp, or any value when the
// regexp is nil (Spring: presence only).
type valueMatcher struct {
	re *regexp.Regexp
	// maxInput: a longer value does not match re (args.MatchBudget).
	maxInput int
}

func (v valueMatcher) match(s string) bool {
	return v.re == nil || len(s) <= v.maxInput && v.re.MatchString(s)
}

// newNamedValue reads the (name, regexp) arguments shared by Header, Query
// and Cookie.
func newNamedValue(field string, a args.Args, build func(name string, v valueMatcher) Predicate) (Predicate, error) {
	name, err := a.Required(field)
	if err != nil {
		return nil, err
	}
	expr, err := a.String("regexp", "")
	if err != nil {
		return nil, err
	}
	var v valueMatcher
	if expr != "" {
		// Spring uses String.matches: the whole value must match.
		re, maxInput, err := compileAnchored(expr, false)
		if err != nil {
			return nil, fmt.Errorf("regexp %q: %w", expr, err)
		}
		v.re, v.maxInput = re, maxInput
	}
	return build(name, v), nil
}

// headerPredicate is Header: some value of the header matches.
type headerPredicate struct {
	name string // canonical
	v    valueMatcher
}

func newHeader(name string, v valueMatcher) Predicate {
	return &headerPredicate{name: textproto.CanonicalMIMEHeaderKey(name), v: v}
}

func (p *headerPredicate) Match(in *Input) bool {
	if p.name == "Host" { // net/http moves it out of Header
		return in.Request.Host != "" && p.v.match(in.Request.Host)
	}
	for _, s := range in.Request.Header[p.name] {
		if p.v.match(s) {
			return true
		}
	}
	return false
}

// queryPredicate is Query: some value of the query parameter matches.
type queryPredicate struct {
	param string
	v     valueMatcher
}

func newQuery(name string, v valueMatcher) Predicate {
	return &queryPredicate{param: name, v: v}
}

// Match scans RawQuery rather than calling URL.Query, which allocates a map.
func (p *queryPredicate) Match(in *Input) bool {
	for q := in.Request.URL.RawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if queryUnescape(k) == p.param && p.v.match(queryUnescape(v)) {
			return true
		}
	}
	return false
}

// queryUnescape decodes a query key or value; it allocates only if s is
// encoded. An invalid encoding yields a value no parameter name equals.
func queryUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return "\x00invalid"
	}
	return u
}

// cookiePredicate is Cookie: some cookie of that name has a matching value.
type cookiePredicate struct {
	name string
	v    valueMatcher
}

func newCookie(name string, v valueMatcher) Predicate {
	return &cookiePredicate{name: name, v: v}
}

// Match scans the Cookie headers rather than calling Request.Cookies, which
// allocates.
func (p *cookiePredicate) Match(in *Input) bool {
	for _, line := range in.Request.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || name != p.name {
				continue
			}
			if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if p.v.match(val) {
				return true
			}
		}
	}
	return false
}

// Interface guards.
var (
	_ Predicate = (*pathPredicate)(nil)
	_ Predicate = (*hostPredicate)(nil)
	_ Predicate = (*methodPredicate)(nil)
	_ Predicate = (*headerPredicate)(nil)
	_ Predicate = (*queryPredicate)(nil)
	_ Predicate = (*cookiePredicate)(nil)
	_ Predicate = (*remoteAddrPredicate)(nil)
	_ Predicate = (*xForwardedRemoteAddrPredicate)(nil)
	_ Predicate = (*weightPredicate)(nil)
	_ Predicate = (*timePredicate)(nil)
)
