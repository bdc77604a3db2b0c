// Package route decides which route a request takes.
//
// It implements Spring Cloud Gateway's route predicates (Path, Host, Method,
// Header, Query, Cookie, RemoteAddr, XForwardedRemoteAddr, Weight, After,
// Before, Between) and an immutable, ordered route Table.
//
// One request flows through it like this:
//
//	var in route.Input
//	if err := in.Prepare(r); err != nil { /* 400 */ }
//	rt, ok := table.Match(&in) // in.Vars now holds the route's {vars}
//
// Predicates see the cleaned, decoded path (Input.Path), never the raw one.
// The proxy must forward that same cleaned path, so that a backend cannot be
// reached through a path that no route matched.
package route

import (
	"iter"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/overload"
)

// Input is one request as the predicates see it. The proxy fills it once per
// request with Prepare and passes it to Table.Match. Predicates must not
// modify Request.
type Input struct {
	Request *http.Request
	// Path is the cleaned, percent-decoded request path (see CleanPath). It
	// always starts with "/". It may contain bytes such as '?', '%' or ' ', so
	// it must be re-escaped (e.g. through url.URL.Path) when forwarded.
	Path string
	// Host is the request host in lower case, without port, brackets or a
	// trailing dot.
	Host string
	// HostPort is the Host header in lower case, as sent (with its port,
	// if any): what Spring Cloud Gateway's Host predicate matches.
	HostPort string
	// Remote is the TCP peer address; it is invalid if Request.RemoteAddr
	// cannot be parsed.
	Remote netip.Addr
	// Vars holds the path and host variables of the matched route.
	Vars Vars

	// rand is drawn once per Table.Match for Weight predicates.
	rand uint64
}

// Prepare resets in and fills it from r. It returns an error wrapping
// ErrInvalidPath for a path that cannot be decoded or cleaned safely; the
// proxy should answer 400 Bad Request.
//
// If r.URL.RawPath is set, it is decoded (so "%2F" becomes a separator);
// otherwise r.URL.Path, which net/http has already decoded, is cleaned
// without decoding it again. Prepare does not allocate when the path is
// already clean, the host already lower case, and the path needs no decoding.
func (in *Input) Prepare(r *http.Request) error {
	*in = Input{Request: r}
	var err error
	if r.URL.RawPath != "" {
		in.Path, err = CleanPath(r.URL.RawPath)
	} else {
		in.Path, err = cleanPath(r.URL.Path, false)
	}
	if err != nil {
		return err
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	in.Host = normalizeHost(host)
	in.HostPort = strings.ToLower(host)
	in.Remote = parseRemote(r.RemoteAddr)
	return nil
}

// normalizeHost strips the port, IPv6 brackets and a trailing dot from host,
// and lower-cases it.
func normalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// parseRemote parses the IP of an http.Request.RemoteAddr ("ip:port",
// "[ipv6]:port" or a bare IP); the port is not needed.
func parseRemote(s string) netip.Addr {
	ip := s
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			ip = s[1:i]
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s, ':') == i {
		ip = s[:i]
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// MaxVars is the number of variables Vars can hold. A pattern with more
// variables is rejected; if a route's predicates together capture more, the
// extra ones are dropped.
const MaxVars = 8

// Vars holds the variables captured by a route's Path and Host patterns, in
// capture order. Values are substrings of Input.Path or Input.Host, so Vars
// never allocates. The zero value is empty.
type Vars struct {
	n      int
	names  [MaxVars]string
	values [MaxVars]string
}

// Get returns the value of the first variable called name.
func (v *Vars) Get(name string) (string, bool) {
	for i := range v.n {
		if v.names[i] == name {
			return v.values[i], true
		}
	}
	return "", false
}

// Len returns the number of variables.
func (v *Vars) Len() int { return v.n }

// At returns the i-th variable, 0 <= i < Len().
func (v *Vars) At(i int) (name, value string) {
	if i < 0 || i >= v.n {
		panic("route: Vars index out of range")
	}
	return v.names[i], v.values[i]
}

// All iterates over the variables in capture order.
func (v *Vars) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range v.n {
			if !yield(v.names[i], v.values[i]) {
				return
			}
		}
	}
}

// add appends a variable; beyond MaxVars it is dropped.
func (v *Vars) add(name, value string) {
	if v.n < MaxVars {
		v.names[v.n], v.values[v.n] = name, value
		v.n++
	}
}

// A Predicate is one condition of a route. Match must be safe for concurrent
// use, should not allocate, and must not modify in other than in.Vars
// (Table.Match clears Vars before trying each route).
type Predicate interface {
	Match(in *Input) bool
}

// BodyLimits are a route's change to its listener's request-body timeout
// and minimum rate: a nil field keeps the listener's value.
type BodyLimits struct {
	Timeout *time.Duration
	MinRate *int64
}

// A Route is one compiled route: it matches a request when all its Predicates
// do (a route without predicates matches every request).
type Route struct {
	ID string
	// Order ranks routes: lower first. Routes of equal Order keep their
	// declaration order.
	Order      int
	Predicates []Predicate
	// Upstream names the backend the chain ends at (logs, metrics).
	Upstream string
	// Chain runs the route's filters, then forwards to its upstream.
	Chain http.RoundTripper
	// MaxBodySize caps the request body (413 beyond). 0 = no cap.
	MaxBodySize int64
	// Limit bounds the route's requests in flight; nil = no limit.
	Limit *overload.Limiter
	// Body, when set, changes the listener's request-body limits for the route.
	Body *BodyLimits

	index int // in the slice given to NewTable
}
