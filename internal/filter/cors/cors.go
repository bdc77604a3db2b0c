// Package cors answers CORS preflight requests and adds CORS headers to
// responses, following Spring's CorsConfiguration and DefaultCorsProcessor:
// one Policy per route (the Cors filter) or per path pattern (the global
// cors block, first matching pattern wins).
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// Rejected is the reason of the 403 answered to a CORS request the policy refuses.
const Rejected = "cors_rejected"

// Policy is Spring's CorsConfiguration. Unset AllowedMethods means GET and
// HEAD; unset AllowedHeaders allows no request headers in a preflight; "*"
// means any in every list. MaxAge 0 sends no Access-Control-Max-Age.
type Policy struct {
	AllowedOrigins        []string
	AllowedOriginPatterns []string
	AllowedMethods        []string
	AllowedHeaders        []string
	ExposedHeaders        []string
	AllowCredentials      bool
	MaxAge                time.Duration
}

// policy is a checked Policy, ready to use.
type policy struct {
	anyOrigin bool
	origins   []string // lower case, without trailing slash
	patterns  []*regexp.Regexp
	anyMethod bool
	methods   []string
	anyHeader bool
	headers   []string // lower case
	exposed   string
	creds     bool
	maxAge    string
}

// compile checks p as Spring does when a configuration is applied.
func compile(p Policy) (*policy, error) {
	c := &policy{creds: p.AllowCredentials}
	for _, o := range p.AllowedOrigins {
		if o == "*" {
			c.anyOrigin = true
			continue
		}
		c.origins = append(c.origins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	if c.anyOrigin && p.AllowCredentials {
		return nil, errors.New(`allowed_origins: cannot contain "*" when allow_credentials is true; list the origins or use allowed_origin_patterns`)
	}
	for _, o := range p.AllowedOriginPatterns {
		re, err := originPattern(o)
		if err != nil {
			return nil, fmt.Errorf("allowed_origin_patterns: %q: %v", o, err)
		}
		c.patterns = append(c.patterns, re)
	}
	if len(p.AllowedMethods) == 0 {
		c.methods = []string{http.MethodGet, http.MethodHead}
	}
	for _, m := range p.AllowedMethods {
		if m == "*" {
			c.anyMethod = true
			continue
		}
		c.methods = append(c.methods, strings.ToUpper(m))
	}
	for _, h := range p.AllowedHeaders {
		if h == "*" {
			c.anyHeader = true
			continue
		}
		c.headers = append(c.headers, strings.ToLower(h))
	}
	if slices.Contains(p.ExposedHeaders, "*") && p.AllowCredentials {
		return nil, errors.New(`exposed_headers: cannot contain "*" when allow_credentials is true`)
	}
	c.exposed = strings.Join(p.ExposedHeaders, ", ")
	if p.MaxAge < 0 {
		return nil, errors.New("max_age: must not be negative")
	}
	if p.MaxAge > 0 {
		c.maxAge = strconv.FormatInt(int64(p.MaxAge/time.Second), 10)
	}
	return c, nil
}

// originPattern compiles Spring's origin patterns: "*" for any; "*" inside
// for any characters ("https://*.example.com"); a port list ":[8080,8081]"
// or any port ":[*]" at the end.
func originPattern(p string) (*regexp.Regexp, error) {
	if p == "*" {
		return regexp.MustCompile(`.*`), nil
	}
	ports := ""
	if i := strings.LastIndex(p, ":["); i >= 0 && strings.HasSuffix(p, "]") {
		list := p[i+2 : len(p)-1]
		p = p[:i]
		if list == "*" {
			ports = `(:\d+)?`
		} else {
			var alts []string
			for port := range strings.SplitSeq(list, ",") {
				port = strings.TrimSpace(port)
				if _, err := strconv.ParseUint(port, 10, 16); err != nil {
					return nil, fmt.Errorf("bad port %q", port)
				}
				alts = append(alts, port)
			}
			ports = `:(` + strings.Join(alts, "|") + `)`
		}
	}
	parts := strings.Split(strings.ToLower(strings.TrimSuffix(p, "/")), "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.Compile(`^` + strings.Join(parts, `.*`) + ports + `$`)
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or "".
func (c *policy) allowOrigin(origin string) string {
	o := strings.ToLower(strings.TrimSuffix(origin, "/"))
	if c.anyOrigin {
		return "*"
	}
	if slices.Contains(c.origins, o) {
		return origin
	}
	for _, re := range c.patterns {
		if re.MatchString(o) {
			return origin
		}
	}
	return ""
}

func (c *policy) allowMethod(m string) bool {
	return c.anyMethod || slices.Contains(c.methods, m)
}

// allowHeaders returns the requested headers when all are allowed.
func (c *policy) allowHeaders(requested []string) ([]string, bool) {
	var out []string
	for _, v := range requested {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h == "" {
				continue
			}
			if !c.anyHeader && !slices.Contains(c.headers, strings.ToLower(h)) {
				return nil, false
			}
			out = append(out, h)
		}
	}
	return out, true
}

// isCORS reports whether r has an Origin other than the host it asked for.
func isCORS(r *http.Request) (string, bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return "", false
	}
	host := r.Host
	if ex := exchange.From(r.Context()); ex != nil {
		host = ex.Host
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(stripDefaultPort(u), host) {
		return "", false
	}
	return origin, true
}

func stripDefaultPort(u *url.URL) string {
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		return u.Hostname()
	}
	return u.Host
}

func reject(r *http.Request) *http.Response {
	body := "Invalid CORS request"
	return &http.Response{
		Status: "403 Forbidden", StatusCode: http.StatusForbidden, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}, "Content-Length": {strconv.Itoa(len(body))},
			"Vary": {"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}},
		Body: readCloser{strings.NewReader(body)}, ContentLength: int64(len(body)), Request: r,
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// serve applies c to r: it answers a preflight, refuses a disallowed CORS
// request, or passes r on and adds the CORS headers to the response.
func (c *policy) serve(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	origin, ok := isCORS(r)
	if !ok {
		return next.RoundTrip(r)
	}
	allowOrigin := c.allowOrigin(origin)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		m := r.Header.Get("Access-Control-Request-Method")
		hs, hok := c.allowHeaders(r.Header.Values("Access-Control-Request-Headers"))
		if allowOrigin == "" || !c.allowMethod(m) || !hok {
			return reject(r), nil
		}
		resp := &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Length": {"0"}}, Body: http.NoBody, Request: r,
		}
		h := resp.Header
		h["Vary"] = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
		h["Access-Control-Allow-Origin"] = []string{allowOrigin}
		if c.anyMethod {
			h["Access-Control-Allow-Methods"] = []string{m}
		} else {
			h["Access-Control-Allow-Methods"] = []string{strings.Join(c.methods, ",")}
		}
		if len(hs) > 0 {
			h["Access-Control-Allow-Headers"] = []string{strings.Join(hs, ", ")}
		}
		if c.creds {
			h["Access-Control-Allow-Credentials"] = []string{"true"}
		}
		if c.maxAge != "" {
			h["Access-Control-Max-Age"] = []string{c.maxAge}
		}
		return resp, nil
	}
	if allowOrigin == "" || !c.allowMethod(r.Method) {
		return reject(r), nil
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	// Set, not add: a backend's own CORS headers would otherwise be doubled.
	h := resp.Header
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	if c.creds {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if c.exposed != "" {
		h.Set("Access-Control-Expose-Headers", c.exposed)
	}
	if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(strings.ToLower(v), "origin") }) {
		h.Add("Vary", "Origin")
	}
	return resp, nil
}

// Check reports what is wrong with p, as New would.
func Check(p Policy) error {
	_, err := compile(p)
	return err
}

// New returns a filter that applies p to every request of its route.
func New(p Policy) (filter.Filter, error) {
	c, err := compile(p)
	if err != nil {
		return nil, err
	}
	return filter.Func(c.serve), nil
}

// A Rule applies Policy to the requests whose path Match accepts.
type Rule struct {
	Pattern string
	Match   func(path string) bool
	Policy  Policy
}

// Global returns a filter that applies the policy of the first rule whose
// pattern matches the request path (the top-level cors block).
func Global(rules []Rule) (filter.Filter, error) {
	type compiled struct {
		match func(string) bool
		p     *policy
	}
	var cs []compiled
	for _, r := range rules {
		c, err := compile(r.Policy)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", r.Pattern, err)
		}
		cs = append(cs, compiled{r.Match, c})
	}
	return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if r.Header.Get("Origin") != "" {
			for _, c := range cs {
				if c.match(r.URL.Path) {
					return c.p.serve(r, next)
				}
			}
		}
		return next.RoundTrip(r)
	}), nil
}

// Factory is the per-route Cors filter; its arguments are the fields of the
// global cors block:
//
//	{name: Cors, args: {allowed_origins: [https://a.example], allowed_methods: [GET, POST], max_age: 30m}}
var Factory = filter.Factory{
	Fields: []string{"allowed_origins", "allowed_origin_patterns", "allowed_methods", "allowed_headers",
		"exposed_headers", "allow_credentials", "max_age"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		p := Policy{
			AllowedOrigins:        a.Strings("allowed_origins"),
			AllowedOriginPatterns: a.Strings("allowed_origin_patterns"),
			AllowedMethods:        a.Strings("allowed_methods"),
			AllowedHeaders:        a.Strings("allowed_headers"),
			ExposedHeaders:        a.Strings("exposed_headers"),
		}
		var err error
		if p.AllowCredentials, err = a.Bool("allow_credentials", false); err != nil {
			return nil, err
		}
		if s, _ := a.String("max_age", ""); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				p.MaxAge = time.Duration(n) * time.Second // Spring's maxAge is in seconds
			} else if p.MaxAge, err = time.ParseDuration(s); err != nil {
				return nil, fmt.Errorf("max_age: %q is not a duration (like 30m) or a number of seconds", s)
			}
		} else if _, err := a.String("max_age", ""); err != nil {
			return nil, err
		}
		if len(p.AllowedOrigins) == 0 && len(p.AllowedOriginPatterns) == 0 {
			return nil, errors.New("allowed_origins or allowed_origin_patterns: at least one origin required")
		}
		return New(p)
	},
}
