package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// grpcContentType returns the content type of the gateway's own answers to
// r when r is a gRPC call (content-type application/grpc*, gRPC-Web
// included), or "".
func grpcContentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch {
	case !strings.HasPrefix(ct, "application/grpc"):
		return ""
	case strings.HasPrefix(ct, "application/grpc-web-text"):
		return "application/grpc-web-text"
	case strings.HasPrefix(ct, "application/grpc-web"):
		return "application/grpc-web"
	}
	return "application/grpc"
}

// grpcCode is the gRPC status of a gateway error: by its reason where the
// reason says more than the HTTP status (a timeout is DEADLINE_EXCEEDED,
// which clients do not retry, where 504 would read as UNAVAILABLE), and
// otherwise by gRPC's own mapping of HTTP statuses
// (grpc/doc/http-grpc-status-mapping.md), as Envoy does.
func grpcCode(ge *exchange.Error) int {
	switch ge.Reason {
	case exchange.ResponseTimeout:
		return grpcDeadlineExceeded
	case exchange.BodyTooLarge:
		return grpcResourceExhausted
	case exchange.UpstreamBadResponse:
		return grpcInternal
	}
	switch ge.Status {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

// failGRPC answers a gRPC call with the gateway's error as a Trailers-Only
// response: HTTP 200, grpc-status and grpc-message in the headers, no body.
// A Retry-After already set (overload) becomes grpc-retry-pushback-ms.
func failGRPC(w http.ResponseWriter, contentType string, ge *exchange.Error) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("X-Sluice-Reason", ge.Reason)
	hd.Set("Grpc-Status", strconv.Itoa(grpcCode(ge)))
	hd.Set("Grpc-Message", grpcMessage(http.StatusText(ge.Status)+": "+ge.Reason))
	if s, err := strconv.Atoi(hd.Get("Retry-After")); err == nil && s >= 0 {
		hd.Set("Grpc-Retry-Pushback-Ms", strconv.FormatInt((time.Duration(s)*time.Second).Milliseconds(), 10))
	}
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes s as the gRPC protocol asks of grpc-message:
// every byte outside printable ASCII, and '%'.
func grpcMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcTimeout parses grpc-timeout: at most 8 digits and a unit, H M S m u n.
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for _, c := range []byte(v[:len(v)-1]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	// 99999999 hours overflows a Duration: such a deadline is no bound.
	if n > int64(time.Duration(1<<63-1)/unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}
