package builtin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/filter"
)

// retryFilter carries Spring's Retry arguments to the route's retry policy;
// per request it does nothing (the gateway leaves it out of the chain).
type retryFilter struct{ p filter.RetryPolicy }

func (f *retryFilter) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	return next.RoundTrip(r)
}

func (f *retryFilter) RetryPolicy() filter.RetryPolicy { return f.p }

var seriesNames = map[string]int{
	"INFORMATIONAL": 1, "SUCCESSFUL": 2, "REDIRECTION": 3, "CLIENT_ERROR": 4, "SERVER_ERROR": 5,
}

// Retry=3,INTERNAL_SERVER_ERROR,GET,10ms,50ms,2,false maps Spring's Retry
// filter onto the route's retry policy: retries+1 attempts, the statuses and
// series (default SERVER_ERROR) retried, the methods (default GET) retried,
// and the backoff. The route's safety rules still apply: a response status
// is retried only for idempotent requests, and a request that may have
// reached the backend is replayed only if it is idempotent or the route
// allows it (retry.retry_non_idempotent). exceptions is accepted for Spring
// compatibility: which transport failures are retried is decided by what
// failed and whether the request could have been processed.
var retry = filter.Factory{
	Fields: []string{"retries", "statuses", "methods", "backoff.firstBackoff", "backoff.maxBackoff",
		"backoff.factor", "backoff.basedOnPreviousValue", "series", "exceptions"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		var p filter.RetryPolicy
		n, err := a.Int("retries", 3)
		if err != nil {
			return nil, err
		}
		if n < 0 || n > 9 {
			return nil, fmt.Errorf("retries: must be between 0 and 9, got %d", n)
		}
		p.Attempts = n + 1
		for _, s := range splitList(a.Strings("statuses")) {
			code, err := parseStatus(s)
			if err != nil {
				return nil, fmt.Errorf("statuses: %v", err)
			}
			p.Statuses = append(p.Statuses, code)
		}
		series := []string{"SERVER_ERROR"}
		if _, given := a["series"]; given {
			series = splitList(a.Strings("series"))
		}
		for _, s := range series {
			c, ok := seriesNames[strings.ToUpper(s)]
			if !ok {
				return nil, fmt.Errorf("series: %q is not INFORMATIONAL, SUCCESSFUL, REDIRECTION, CLIENT_ERROR or SERVER_ERROR", s)
			}
			for code := c * 100; code < c*100+100; code++ {
				if !slices.Contains(p.Statuses, code) {
					p.Statuses = append(p.Statuses, code)
				}
			}
		}
		p.Methods = []string{http.MethodGet}
		if a.Has("methods") {
			p.Methods = nil
			for _, m := range splitList(a.Strings("methods")) {
				m = strings.ToUpper(m)
				if !validMethod(m) {
					return nil, fmt.Errorf("methods: %q is not an HTTP method", m)
				}
				p.Methods = append(p.Methods, m)
			}
		}
		for _, e := range splitList(a.Strings("exceptions")) {
			if e == "" || strings.ContainsAny(e, " /") {
				return nil, fmt.Errorf("exceptions: %q is not a class name", e)
			}
		}
		if a.Has("backoff.firstBackoff") || a.Has("backoff.maxBackoff") {
			first, err := a.Duration("backoff.firstBackoff", 5*time.Millisecond)
			if err != nil {
				return nil, err
			}
			factor, err := a.Int("backoff.factor", 2)
			if err != nil {
				return nil, err
			}
			if factor < 1 {
				return nil, fmt.Errorf("backoff.factor: must be 1 or more, got %d", factor)
			}
			if _, err := a.Bool("backoff.basedOnPreviousValue", true); err != nil {
				return nil, err
			}
			// Without maxBackoff, the wait grows up to the last retry's.
			def := first
			for i := 1; i < n && def < time.Minute; i++ {
				def *= time.Duration(factor)
			}
			last, err := a.Duration("backoff.maxBackoff", def)
			if err != nil {
				return nil, err
			}
			if first <= 0 || last < first {
				return nil, fmt.Errorf("backoff: firstBackoff (%s) must be more than 0 and not exceed maxBackoff (%s)", first, last)
			}
			p.BackoffBase, p.BackoffMax = first, last
		} else if a.Has("backoff.factor") || a.Has("backoff.basedOnPreviousValue") {
			return nil, fmt.Errorf("backoff: firstBackoff required")
		}
		return &retryFilter{p}, nil
	},
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
