package proxy

import (
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/exchange"
)

func TestGRPCTimeoutParsesTheProtocolsUnitsAndRefusesTheRest(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want time.Duration
		ok   bool
	}{
		{"hours", "2H", 2 * time.Hour, true},
		{"minutes", "3M", 3 * time.Minute, true},
		{"seconds", "10S", 10 * time.Second, true},
		{"milliseconds", "500m", 500 * time.Millisecond, true},
		{"microseconds", "7u", 7 * time.Microsecond, true},
		{"nanoseconds", "99999999n", 99999999, true},
		{"zero", "0S", 0, true},
		{"nine digits", "123456789S", 0, false},
		{"no digits", "S", 0, false},
		{"unknown unit", "5s", 0, false},
		{"sign", "-5S", 0, false},
		{"space", " 5S", 0, false},
		{"empty", "", 0, false},
		{"hours beyond a Duration", "99999999H", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := grpcTimeout(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("grpcTimeout(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestGRPCMessagePercentEncodesOutsidePrintableASCII(t *testing.T) {
	if got, want := grpcMessage("Gateway Timeout: 100% ü\n"), "Gateway Timeout: 100%25 %C3%BC%0A"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestGRPCCodeOfEachGatewayError(t *testing.T) {
	tests := []struct {
		desc   string
		status int
		reason string
		want   int
	}{
		{"route timeout is DEADLINE_EXCEEDED, not the UNAVAILABLE of a 504", 504, exchange.ResponseTimeout, grpcDeadlineExceeded},
		{"connect timeout is UNAVAILABLE: nothing was sent", 504, exchange.UpstreamConnectTimeout, grpcUnavailable},
		{"connect failure", 502, exchange.UpstreamConnectFailure, grpcUnavailable},
		{"reset before the response", 502, exchange.UpstreamResetBeforeResp, grpcUnavailable},
		{"no healthy upstream", 503, exchange.NoHealthyUpstream, grpcUnavailable},
		{"overloaded", 503, exchange.Overloaded, grpcUnavailable},
		{"bad response", 502, exchange.UpstreamBadResponse, grpcInternal},
		{"no route", 404, exchange.NoRoute, grpcUnimplemented},
		{"body too large", 413, exchange.BodyTooLarge, grpcResourceExhausted},
		{"bad request", 400, exchange.BadRequest, grpcInternal},
		{"unauthenticated", 401, "unauthorized", grpcUnauthenticated},
		{"forbidden", 403, "forbidden", grpcPermissionDenied},
		{"too many requests", 429, "rate_limited", grpcUnavailable},
		{"anything else", 508, "forward_loop", grpcUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := grpcCode(&exchange.Error{Status: tc.status, Reason: tc.reason}); got != tc.want {
				t.Fatalf("grpcCode(%d %s) = %d, want %d", tc.status, tc.reason, got, tc.want)
			}
		})
	}
}
