package builtin

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// AddRequestHeadersIfNotPresent=X-A:1,X-B:2 adds each header the request
// does not have; a name listed twice gets both values.
var addRequestHeadersIfNotPresent = filter.Factory{Fields: []string{"headers..."}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	type kv struct {
		name  string
		value headerValue
	}
	var hs []kv
	for _, s := range a.Strings("headers") {
		n, v, ok := strings.Cut(s, ":")
		if !ok || strings.TrimSpace(n) == "" {
			return nil, fmt.Errorf("headers: %q is not name:value", s)
		}
		hs = append(hs, kv{http.CanonicalHeaderKey(strings.TrimSpace(n)), newHeaderValue(strings.TrimSpace(v))})
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("headers: required")
	}
	return filter.Request(func(r *http.Request) {
		ex := exchange.From(r.Context())
		var buf [8]string
		present := buf[:0] // names present before this filter ran
		for _, h := range hs {
			if _, ok := r.Header[h.name]; ok && !slices.Contains(present, h.name) {
				continue
			}
			if !slices.Contains(present, h.name) {
				present = append(present, h.name)
			}
			addValues(r.Header, h.name, h.value.values(ex))
		}
	}), nil
}}

// MapRequestHeader=X-A,X-B copies the values of X-A into X-B (added to any
// X-B already there). Nothing happens without X-A.
var mapRequestHeader = filter.Factory{Fields: []string{"fromHeader", "toHeader"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	from, err := a.Required("fromHeader")
	if err != nil {
		return nil, err
	}
	to, err := a.Required("toHeader")
	if err != nil {
		return nil, err
	}
	from, to = http.CanonicalHeaderKey(from), http.CanonicalHeaderKey(to)
	return filter.Request(func(r *http.Request) {
		for _, v := range r.Header[from] {
			r.Header.Add(to, v)
		}
	}), nil
}}

// DedupeResponseHeader=Access-Control-Allow-Origin Vary,RETAIN_FIRST keeps one
// value of each named (space-separated) response header.
var dedupeResponseHeader = filter.Factory{Fields: []string{"name", "strategy"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Required("name")
	if err != nil {
		return nil, err
	}
	strategy, err := a.String("strategy", "RETAIN_FIRST")
	if err != nil {
		return nil, err
	}
	var dedupe func([]string) []string
	switch strategy {
	case "RETAIN_FIRST":
		dedupe = func(v []string) []string { return v[:1:1] } // an append must not write over v[1]
	case "RETAIN_LAST":
		dedupe = func(v []string) []string { return v[len(v)-1:] }
	case "RETAIN_UNIQUE":
		dedupe = func(v []string) []string {
			out := v[:0:0]
			for _, s := range v {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			return out
		}
	default:
		return nil, fmt.Errorf("strategy: %q is not RETAIN_FIRST, RETAIN_LAST or RETAIN_UNIQUE", strategy)
	}
	names := strings.Fields(n)
	for i := range names {
		names[i] = http.CanonicalHeaderKey(names[i])
	}
	return filter.Response(func(resp *http.Response) {
		for _, n := range names {
			if v := resp.Header[n]; len(v) > 1 {
				resp.Header[n] = dedupe(v)
			}
		}
	}), nil
}}

// RewriteResponseHeader=X-Response-Red,password=[^&]+,password=*** rewrites
// every value of a response header with a Java regexp and replacement.
var rewriteResponseHeader = filter.Factory{Fields: []string{"name", "regexp", "replacement"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Required("name")
	if err != nil {
		return nil, err
	}
	expr, err := a.Required("regexp")
	if err != nil {
		return nil, err
	}
	repl, err := a.String("replacement", "")
	if err != nil {
		return nil, err
	}
	rw, err := newRewriter(expr, repl)
	if err != nil {
		return nil, err
	}
	n = http.CanonicalHeaderKey(n)
	return filter.Response(func(resp *http.Response) {
		if vv := resp.Header[n]; len(vv) > 0 {
			out := make([]string, len(vv)) // vv may be shared: never written in place
			for i, v := range vv {
				out[i] = rw.replaceAll(v)
			}
			resp.Header[n] = out
		}
	}), nil
}}

// RewriteLocationResponseHeader=AS_IN_REQUEST,Location,,https?|ftps? puts
// the host the client asked for (or hostValue) into a Location header that
// names the backend, and strips a version prefix (/v1) as stripVersion says.
var rewriteLocationResponseHeader = filter.Factory{
	Fields: []string{"stripVersion", "locationHeaderName", "hostValue", "protocols"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		mode, err := a.String("stripVersion", "AS_IN_REQUEST")
		if err != nil {
			return nil, err
		}
		if mode != "NEVER_STRIP" && mode != "AS_IN_REQUEST" && mode != "ALWAYS_STRIP" {
			return nil, fmt.Errorf("stripVersion: %q is not NEVER_STRIP, AS_IN_REQUEST or ALWAYS_STRIP", mode)
		}
		name, err := a.String("locationHeaderName", "Location")
		if err != nil {
			return nil, err
		}
		hostValue, err := a.String("hostValue", "")
		if err != nil {
			return nil, err
		}
		protocols, err := a.String("protocols", "")
		if err != nil {
			return nil, err
		}
		if protocols == "" { // Spring's example leaves it empty: "AS_IN_REQUEST, Location, ,"
			protocols = "https?|ftps?"
		}
		// Spring's patterns: the authority after "<protocol>://", up to the path.
		hostPort, err := regexp.Compile(`^((?:` + protocols + `)://)[^:/]+(?::\d+)?(/|$)`)
		if err != nil {
			return nil, fmt.Errorf("protocols: %v", err)
		}
		hostPortVersion, _ := regexp.Compile(`^((?:` + protocols + `)://)[^:/]+(?::\d+)?(?:/v\d+)?(/|$)`)
		version := regexp.MustCompile(`^/v\d+(/|$)`)
		name = http.CanonicalHeaderKey(name)
		return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
			host := hostValue
			if host == "" {
				if ex := exchange.From(r.Context()); ex != nil {
					host = ex.Host
				}
			}
			strip := mode == "ALWAYS_STRIP" || (mode == "AS_IN_REQUEST" && !version.MatchString(r.URL.Path))
			resp, err := next.RoundTrip(r)
			if err != nil || host == "" {
				return resp, err
			}
			loc := resp.Header.Get(name)
			if loc == "" {
				return resp, nil
			}
			re := hostPort
			if strip {
				re = hostPortVersion
			}
			if m := re.FindStringSubmatchIndex(loc); m != nil {
				resp.Header.Set(name, loc[m[2]:m[3]]+host+loc[m[4]:])
			}
			return resp, nil
		}), nil
	},
}

// secureHeaderDefaults are Spring's SecureHeaders values, by lower-case name.
var secureHeaderDefaults = []struct{ arg, name, value string }{
	{"xssProtectionHeader", "X-Xss-Protection", "1 ; mode=block"},
	{"strictTransportSecurity", "Strict-Transport-Security", "max-age=631138519"},
	{"frameOptions", "X-Frame-Options", "DENY"},
	{"contentTypeOptions", "X-Content-Type-Options", "nosniff"},
	{"referrerPolicy", "Referrer-Policy", "no-referrer"},
	{"contentSecurityPolicy", "Content-Security-Policy", "default-src 'self' https:; font-src 'self' https: data:; img-src 'self' https: data:; object-src 'none'; script-src https:; style-src 'self' https: 'unsafe-inline'"},
	{"downloadOptions", "X-Download-Options", "noopen"},
	{"permittedCrossDomainPolicies", "X-Permitted-Cross-Domain-Policies", "none"},
	// Opt-in (enable: permissions-policy), as in Spring.
	{"permissionsPolicy", "Permissions-Policy", "accelerometer=(), ambient-light-sensor=(), autoplay=(), battery=(), camera=(), cross-origin-isolated=(), display-capture=(), document-domain=(), encrypted-media=(), execution-while-not-rendered=(), execution-while-out-of-viewport=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), navigation-override=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(), usb=(), web-share=(), xr-spatial-tracking=()"},
}

// SecureHeaders adds Spring's security headers to responses that lack them.
// disable (lower-case header names) drops some; enable turns on the opt-in
// Permissions-Policy; each value can be overridden by its argument.
var secureHeaders = filter.Factory{
	Fields: func() []string {
		f := []string{"disable", "enable"}
		for _, d := range secureHeaderDefaults {
			f = append(f, d.arg)
		}
		return f
	}(),
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		known := func(list []string, field string) error {
			for _, s := range list {
				if !slices.ContainsFunc(secureHeaderDefaults, func(d struct{ arg, name, value string }) bool {
					return strings.EqualFold(d.name, strings.TrimSpace(s))
				}) {
					return fmt.Errorf("%s: %q is not one of the secure headers", field, s)
				}
			}
			return nil
		}
		disable, enable := splitList(a.Strings("disable")), splitList(a.Strings("enable"))
		if err := known(disable, "disable"); err != nil {
			return nil, err
		}
		if err := known(enable, "enable"); err != nil {
			return nil, err
		}
		has := func(list []string, name string) bool {
			return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, name) })
		}
		var names []string
		var values [][]string // one-value slices, shared by every response
		for _, d := range secureHeaderDefaults {
			if has(disable, d.name) || (d.name == "Permissions-Policy" && !has(enable, d.name)) {
				continue
			}
			v, err := a.String(d.arg, d.value)
			if err != nil {
				return nil, err
			}
			names, values = append(names, d.name), append(values, []string{v})
		}
		return filter.Response(func(resp *http.Response) {
			for i, n := range names {
				if _, ok := resp.Header[n]; !ok {
					resp.Header[n] = values[i]
				}
			}
		}), nil
	},
}

// splitList splits comma-separated items of a list argument.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// RequestHeaderSize=1000B answers 431 when one header (name and values) is
// larger than maxSize; errorHeaderName names the header that says why. The
// headers the gateway sets itself (Forwarded, X-Forwarded-*) do not count.
var requestHeaderSize = filter.Factory{Fields: []string{"maxSize", "errorHeaderName"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	maxSize, err := a.Size("maxSize", 0)
	if err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		return nil, fmt.Errorf("maxSize: required, more than 0")
	}
	errHeader, err := a.String("errorHeaderName", "errorMessage")
	if err != nil {
		return nil, err
	}
	return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		var long []string
		for k, vv := range r.Header {
			if gatewayHeader(k) {
				continue
			}
			n := len(k)
			for _, v := range vv {
				n += len(v)
			}
			if int64(n) > maxSize {
				long = append(long, fmt.Sprintf("'%s' is %dB", k, n))
			}
		}
		if long == nil {
			return next.RoundTrip(r)
		}
		slices.Sort(long)
		msg := "Request Header/s size is larger than permissible limit. Request Header/s size for " +
			strings.Join(long, ", ") + ". Permissible limit for header size is " + strconv.FormatInt(maxSize, 10) + "B"
		resp := answer(r, http.StatusRequestHeaderFieldsTooLarge)
		resp.Header.Set(errHeader, msg)
		return resp, nil
	}), nil
}}

// gatewayHeader reports whether the proxy sets header k on every request.
func gatewayHeader(k string) bool {
	return k == "Forwarded" || strings.HasPrefix(k, "X-Forwarded-")
}
