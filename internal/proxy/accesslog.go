package proxy

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"time"

	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/tracing"
)

// accessLog is which fields an access-log line carries and which share of
// 2xx responses is logged.
type accessLog struct {
	fields  []accessField
	sample  float64 // of 2xx responses; every other status is logged
	enabled bool    // SetAccessLog was called; otherwise all fields, no sampling
}

type accessField uint8

const (
	fMethod accessField = iota
	fPath
	fRoute
	fUpstream
	fEndpoint
	fStatus
	fReason
	fAttempts
	fDuration
	fBytesIn
	fBytesOut
	fClient
	fProtocol
	fRequestID
	fTraceID
	fSpanID
	fHost
	fUserAgent
	numFields
)

// AccessFields are the names SetAccessLog accepts, in the default order.
var AccessFields = [numFields]string{"method", "path", "route", "upstream", "endpoint", "status", "reason", "attempts",
	"duration", "bytes_in", "bytes_out", "client", "protocol", "request_id", "trace_id", "span_id", "host", "user_agent"}

var allFields = func() []accessField {
	f := make([]accessField, numFields)
	for i := range f {
		f[i] = accessField(i)
	}
	return f
}()

// SetAccessLog turns the access log on or off, and chooses its fields
// (names of AccessFields, in the order given; nil = all) and the fraction of
// 2xx responses logged. It may be called while the handler serves (a
// reload); an error changes nothing.
func (h *Handler) SetAccessLog(on bool, fields []string, sample2xx float64) error {
	a := &accessLog{sample: sample2xx, enabled: true}
	for _, name := range fields {
		found := false
		for i, n := range AccessFields {
			if n == name {
				a.fields = append(a.fields, accessField(i))
				found = true
			}
		}
		if !found {
			return fmt.Errorf("unknown access-log field %q", name)
		}
	}
	if fields == nil {
		a.fields = allFields
	}
	if !on {
		a = nil
	}
	h.access.Store(a)
	return nil
}

// keep reports whether the request's line is written: every non-2xx one,
// and the sampled share of 2xx.
func (a *accessLog) keep(status int) bool {
	if !a.enabled || status < 200 || status > 299 || a.sample >= 1 {
		return true
	}
	return a.sample > 0 && rand.Float64() < a.sample
}

func (h *Handler) logAccess(a *accessLog, r *http.Request, ex *exchange.Exchange, status int, reqBytes, respBytes int64, d time.Duration) {
	fields := a.fields
	if !a.enabled {
		fields = allFields
	}
	var buf [numFields]slog.Attr
	attrs := buf[:0]
	for _, f := range fields {
		var a slog.Attr
		switch f {
		case fMethod:
			a = slog.String("method", r.Method)
		case fPath:
			a = slog.String("path", r.URL.Path)
		case fRoute:
			a = slog.String("route", ex.RouteID)
		case fUpstream:
			a = slog.String("upstream", ex.Upstream)
		case fEndpoint:
			a = slog.String("endpoint", ex.Endpoint)
		case fStatus:
			a = slog.Int("status", status)
		case fReason:
			a = slog.String("reason", ex.Reason)
		case fAttempts:
			a = slog.Int("attempts", ex.Attempts)
		case fDuration:
			a = slog.Duration("duration", d)
		case fBytesIn:
			a = slog.Int64("bytes_in", reqBytes)
		case fBytesOut:
			a = slog.Int64("bytes_out", respBytes)
		case fClient:
			a = slog.String("client", addrText(r.RemoteAddr, h.client(r, ex)))
		case fProtocol:
			a = slog.String("protocol", r.Proto)
		case fRequestID:
			a = slog.String("request_id", ex.RequestID)
		case fTraceID:
			a = slog.String("trace_id", traceID(ex))
		case fSpanID:
			a = slog.String("span_id", spanID(ex))
		case fHost:
			a = slog.String("host", ex.Host)
		case fUserAgent:
			a = slog.String("user_agent", r.UserAgent())
		}
		attrs = append(attrs, a)
	}
	h.Log.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
}

// traceID and spanID are the request's trace id and the gateway's span id
// in hex: parts of the traceparent sent upstream, once it is made.
func traceID(ex *exchange.Exchange) string {
	if len(ex.Traceparent) == traceparentLen {
		return ex.Traceparent[3:35]
	}
	return tracing.TraceID(&ex.Trace)
}

func spanID(ex *exchange.Exchange) string {
	if len(ex.Traceparent) == traceparentLen {
		return ex.Traceparent[36:52]
	}
	return tracing.SpanID(&ex.Trace)
}

// traceparentLen is the length of a version-00 traceparent:
// "00-" 32 hex "-" 16 hex "-" 2 hex.
const traceparentLen = 55

// client is the request's client: the exchange's, set once a route took the
// request; for one answered before (no route, a bad request, shed), the
// same address found the same way: the peer, or the client a trusted proxy
// names in X-Forwarded-For.
func (h *Handler) client(r *http.Request, ex *exchange.Exchange) netip.Addr {
	if ex.Client.IsValid() {
		return ex.Client
	}
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	var trusted []netip.Prefix
	if t := h.table.Load(); t != nil {
		trusted = t.TrustedProxies
	}
	if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 && contains(trusted, peer.Addr()) {
		return clientFrom(xff, peer.Addr(), trusted)
	}
	return peer.Addr()
}
