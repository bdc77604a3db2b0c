package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// CircuitOpen is the reason of the 503 answered while the circuit is open
// and there is no fallback.
const CircuitOpen = "circuit_open"

// OpenError says the breaker refused the call (Resilience4J's CallNotPermittedException).
type OpenError struct{ Name string }

func (e *OpenError) Error() string {
	return "CircuitBreaker '" + e.Name + "' is OPEN and does not permit further calls"
}

// StatusError says the backend answered with a status listed in statusCodes.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "backend answered " + strconv.Itoa(e.Status) }

// Factory is the CircuitBreaker filter:
//
//	CircuitBreaker=myCircuitBreaker,forward:/fallback
//	{name: CircuitBreaker, args: {name: cb, fallbackUri: "forward:/fallback", statusCodes: [500, BAD_GATEWAY]}}
//
// A failure is a transport failure of the gateway (5xx it answers itself)
// or a response status in statusCodes. With a fallbackUri, a failure or an
// open circuit is answered by the fallback: "forward:/path" goes through the
// gateway's routes again, an http(s) URL is called directly. Without one, an
// open circuit answers 503 and failures pass through as they are.
var Factory = filter.Factory{
	Fields: []string{"name", "fallbackUri", "statusCodes", "failureRateThreshold", "slidingWindowSize",
		"minimumNumberOfCalls", "consecutiveFailures", "waitDurationInOpenState", "permittedNumberOfCallsInHalfOpenState"},
	New: newFilter,
}

func newFilter(a args.Args, env *filter.Env) (filter.Filter, error) {
	f := &cbFilter{}
	var err error
	if f.name, err = a.String("name", "default"); err != nil {
		return nil, err
	}
	for _, s := range a.Strings("statusCodes") {
		for p := range strings.SplitSeq(s, ",") {
			code, err := parseStatus(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("statusCodes: %v", err)
			}
			f.statuses = append(f.statuses, code)
		}
	}
	var o Options
	rate, err := a.String("failureRateThreshold", "50")
	if err != nil {
		return nil, err
	}
	if o.FailureRateThreshold, err = strconv.ParseFloat(rate, 64); err != nil || o.FailureRateThreshold <= 0 || o.FailureRateThreshold > 100 {
		return nil, fmt.Errorf("failureRateThreshold: %q must be a percentage in (0, 100]", rate)
	}
	for _, p := range []struct {
		name string
		v    *int
		def  int
	}{
		{"slidingWindowSize", &o.SlidingWindowSize, 100},
		{"minimumNumberOfCalls", &o.MinimumNumberOfCalls, 100},
		{"consecutiveFailures", &o.ConsecutiveFailures, 0},
		{"permittedNumberOfCallsInHalfOpenState", &o.PermittedNumberOfCallsInHalfOpenState, 10},
	} {
		if *p.v, err = a.Int(p.name, p.def); err != nil {
			return nil, err
		}
		if *p.v < 0 || (*p.v == 0 && p.name != "consecutiveFailures") || *p.v > 100000 {
			return nil, fmt.Errorf("%s: must be between 1 and 100000, got %d", p.name, *p.v)
		}
	}
	if o.WaitDurationInOpenState, err = a.Duration("waitDurationInOpenState", 60*time.Second); err != nil {
		return nil, err
	}
	if o.WaitDurationInOpenState <= 0 {
		return nil, errors.New("waitDurationInOpenState: must be more than 0")
	}
	f.b = New(o)

	fb, err := a.String("fallbackUri", "")
	if err != nil {
		return nil, err
	}
	switch {
	case fb == "":
	case strings.HasPrefix(fb, "forward:"):
		u, err := url.Parse(strings.TrimPrefix(fb, "forward:"))
		if err != nil || !strings.HasPrefix(u.Path, "/") || u.Host != "" {
			return nil, fmt.Errorf("fallbackUri: %q: forward: needs a path starting with /", fb)
		}
		if env == nil || env.Forward == nil {
			return nil, fmt.Errorf("fallbackUri: %q: forwarding is not available here", fb)
		}
		f.forward, f.dispatch = u, env.Forward
	default:
		u, err := url.Parse(fb)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("fallbackUri: %q is neither forward:/path nor an http(s) URL", fb)
		}
		f.remote = u
	}
	return f, nil
}

// parseStatus reads "500" or a Spring HttpStatus name ("BAD_GATEWAY").
func parseStatus(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 {
		return n, nil
	}
	for c := 100; c < 600; c++ {
		if t := http.StatusText(c); t != "" && strings.EqualFold(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(t), s) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%q is not an HTTP status (like 500 or BAD_GATEWAY)", s)
}

type cbFilter struct {
	name     string
	b        *Breaker
	statuses []int
	forward  *url.URL
	dispatch func(*http.Request) (*http.Response, error)
	remote   *url.URL
}

// Breaker returns the filter's breaker (for tests and introspection).
func (f *cbFilter) Breaker() *Breaker { return f.b }

func (f *cbFilter) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	t, ok := f.b.Allow()
	if !ok {
		if f.forward == nil && f.remote == nil {
			return nil, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: CircuitOpen, Err: &OpenError{f.name}}
		}
		return f.fallback(r, nil, &OpenError{f.name})
	}
	var kept *replayBody
	if f.forward != nil || f.remote != nil {
		kept = keepBody(r)
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		var ge *exchange.Error
		switch {
		case errors.As(err, &ge) && ge.Status == 499, r.Context().Err() != nil:
			f.b.Release(t)
			return nil, err
		case errors.As(err, &ge) && ge.Status < 500:
			f.b.Done(t, false) // the client's problem, not the backend's
			return nil, err
		}
		f.b.Done(t, true)
		return f.fallback(r, kept, err)
	}
	if slices.Contains(f.statuses, resp.StatusCode) {
		f.b.Done(t, true)
		if f.forward == nil && f.remote == nil {
			return resp, nil
		}
		resp.Body.Close()
		return f.fallback(r, kept, &StatusError{resp.StatusCode})
	}
	f.b.Done(t, false)
	return resp, nil
}

// fallback answers r after cause: by the fallback, or with cause itself.
// The fallback gets the whole request body: CacheRequestBody's copy, or
// kept, what the backend read of it and the rest, or the body unread.
func (f *cbFilter) fallback(r *http.Request, kept *replayBody, cause error) (*http.Response, error) {
	if f.forward == nil && f.remote == nil {
		return nil, cause
	}
	ctx := context.WithValue(r.Context(), failureKey{}, cause)
	var body io.ReadCloser
	switch {
	case r.GetBody != nil: // CacheRequestBody kept it
		body, _ = r.GetBody()
	case kept != nil:
		var err error
		if body, err = kept.detach(); err != nil {
			return nil, err
		}
	case r.Body != nil && r.Body != http.NoBody: // the circuit was open: never sent
		body = r.Body
	}
	if f.forward != nil {
		out := r.Clone(ctx)
		out.URL.Path, out.URL.RawPath = f.forward.Path, ""
		if f.forward.RawQuery != "" {
			out.URL.RawQuery = f.forward.RawQuery
		}
		out.Body, out.ContentLength, out.TransferEncoding = body, 0, nil
		if body != nil {
			out.ContentLength = -1
			if r.ContentLength > 0 && r.GetBody == nil {
				out.ContentLength = r.ContentLength // the whole body, as the client sent it
			} else if b, ok := body.(interface{ Len() int }); ok {
				out.ContentLength = int64(b.Len())
			}
		}
		return f.dispatch(out)
	}
	u := *f.remote
	if u.RawQuery == "" {
		u.RawQuery = r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	resp, err := fallbackClient().Do(out)
	if err != nil {
		return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: "fallback_failed", Err: err}
	}
	return resp, nil
}

var fallbackClient = sync.OnceValue(func() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, DisableCompression: true},
		Timeout:   30 * time.Second,
		// A fallback's redirect is the client's to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
})

type failureKey struct{}

// Failure returns why a circuit breaker sent the request in ctx to its fallback, or nil.
func Failure(ctx context.Context) error {
	err, _ := ctx.Value(failureKey{}).(error)
	return err
}

// FallbackHeaders adds to a request that a circuit breaker forwarded to its
// fallback the headers that say why: the error's type and message, and those
// of its root cause. Arguments rename the headers.
var FallbackHeaders = filter.Factory{
	Fields: []string{"executionExceptionTypeHeaderName", "executionExceptionMessageHeaderName",
		"rootCauseExceptionTypeHeaderName", "rootCauseExceptionMessageHeaderName"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		var names [4]string
		for i, d := range []struct{ arg, def string }{
			{"executionExceptionTypeHeaderName", "Execution-Exception-Type"},
			{"executionExceptionMessageHeaderName", "Execution-Exception-Message"},
			{"rootCauseExceptionTypeHeaderName", "Root-Cause-Exception-Type"},
			{"rootCauseExceptionMessageHeaderName", "Root-Cause-Exception-Message"},
		} {
			n, err := a.String(d.arg, d.def)
			if err != nil {
				return nil, err
			}
			names[i] = http.CanonicalHeaderKey(n)
		}
		return filter.Request(func(r *http.Request) {
			err := Failure(r.Context())
			if err == nil {
				return
			}
			root := err
			for {
				u := errors.Unwrap(root)
				if u == nil {
					break
				}
				root = u
			}
			r.Header.Set(names[0], typeName(err))
			r.Header.Set(names[1], oneLine(err.Error()))
			r.Header.Set(names[2], typeName(root))
			r.Header.Set(names[3], oneLine(root.Error()))
		}), nil
	},
}

func typeName(err error) string { return strings.TrimPrefix(fmt.Sprintf("%T", err), "*") }

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
