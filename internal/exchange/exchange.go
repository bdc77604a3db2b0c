// Package exchange carries what one request accumulates on its way through
// the gateway: the route it matched, its path variables, the endpoint that
// served it, how many tries it took, and why it failed. The proxy creates one
// per request and puts it in the request context; filters and the cluster
// read and fill it; the access log and metrics report it.
package exchange

import (
	"context"
	"net/netip"
	"time"
)

// Var is a path or host variable captured by a route predicate.
type Var struct{ Name, Value string }

// Exchange is one request's record. It is owned by the request's goroutine.
type Exchange struct {
	Start    time.Time
	RouteID  string
	Vars     []Var
	Client   netip.Addr // the client, after trusted proxies
	Host     string     // the Host the client asked for
	Path     string     // the path the route matched, before filters changed it
	Proto    string     // the client's protocol: HTTP/1.1, HTTP/2.0
	Upstream string
	Endpoint string // the endpoint of the last try
	Attempts int
	Reason   string // why the request failed or was answered by the gateway; "" = proxied
	// Deadline, when set, is the client's own (gRPC's grpc-timeout): the
	// wait for the upstream's response ends by it, or by the route's
	// response timeout if that comes first.
	Deadline time.Time
	// PreserveHost asks the cluster to send the client's Host instead of the endpoint's.
	PreserveHost bool

	// RequestID is the X-Request-Id the client sent, or the one the gateway
	// made (RequestIDMade).
	RequestID     string
	RequestIDMade bool
	// Traceparent is the traceparent sent upstream: Trace with the gateway's span as the parent.
	Traceparent string
	// Trace is the request's W3C trace context: the gateway's own span and its parent.
	Trace Trace

	ctx  valueCtx  // the context With returns
	vals [8]string // what Values hands out
	nval int       // vals in use
}

// Values returns v as a header's one-value slice, from storage that is part
// of e (a few; then a new slice), so that the header values the gateway sets
// on every request (request id, trace context, X-Forwarded-*) cost no
// allocation each. Its capacity is 1: an append copies it.
func (e *Exchange) Values(v string) []string {
	if e.nval == len(e.vals) {
		return []string{v}
	}
	e.vals[e.nval] = v
	e.nval++
	return e.vals[e.nval-1 : e.nval : e.nval]
}

// Trace is a W3C trace context (https://www.w3.org/TR/trace-context/).
// SpanID is the gateway's span, the parent of the upstream's; ParentID is
// the client's span, zero when the gateway started the trace.
type Trace struct {
	TraceID  [16]byte
	SpanID   [8]byte
	ParentID [8]byte
	Flags    byte   // bit 0: sampled
	State    string // tracestate, passed on unchanged
}

// Var returns the value of a captured variable.
func (e *Exchange) Var(name string) (string, bool) {
	for _, v := range e.Vars {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

type key struct{}

// With returns ctx carrying e. The context is part of e, so it costs no
// allocation; e carries one context at a time: call With once per exchange.
func With(ctx context.Context, e *Exchange) context.Context {
	e.ctx = valueCtx{Context: ctx, ex: e}
	return &e.ctx
}

// valueCtx is context.WithValue's context for the exchange's key.
type valueCtx struct {
	context.Context
	ex *Exchange
}

func (c *valueCtx) Value(k any) any {
	if k == (key{}) {
		return c.ex
	}
	return c.Context.Value(k)
}

// From returns the exchange in ctx, or nil.
func From(ctx context.Context) *Exchange {
	e, _ := ctx.Value(key{}).(*Exchange)
	return e
}

// Error is a failure the gateway answers itself. Status is the HTTP status
// the client gets; Reason is the short code the response body, the access
// log and the metrics carry.
type Error struct {
	Status int
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons, in the spirit of Envoy's response flags.
const (
	NoRoute                 = "no_route"
	BadRequest              = "bad_request"
	UpstreamConnectFailure  = "upstream_connect_failure"
	UpstreamConnectTimeout  = "upstream_connect_timeout"
	UpstreamResetBeforeResp = "upstream_reset_before_response"
	UpstreamResetAfterStart = "upstream_reset_after_response_started"
	UpstreamBadResponse     = "upstream_bad_response"
	ResponseTimeout         = "response_timeout"
	NoHealthyUpstream       = "no_healthy_upstream"
	UpstreamOverflow        = "upstream_overflow"
	RetryBudgetExhausted    = "retry_budget_exhausted"
	ClientBodyError         = "downstream_body_error"
	ClientCanceled          = "downstream_canceled"
	BodyTooLarge            = "request_body_too_large"
	// Overloaded: a concurrency limit was reached and the request was shed.
	Overloaded = "overloaded"
)
