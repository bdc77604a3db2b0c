package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/overload"
)

// The request id and trace context cost one allocation per request (the
// id and traceparent strings: their header values are the exchange's), and
// a route without a limit none.
func TestHotPathAllocations(t *testing.T) {
	h := &Handler{}
	w := httptest.NewRecorder()
	tests := []struct {
		name   string
		header http.Header
		max    float64
	}{
		{name: "no ids: both made", header: http.Header{}, max: 1},
		{name: "client's ids kept", header: http.Header{"X-Request-Id": {"abc"}, "Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, max: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Header: tc.header}
			var ex exchange.Exchange
			got := testing.AllocsPerRun(200, func() {
				delete(r.Header, "X-Request-Id")
				for k, v := range tc.header {
					r.Header[k] = v
				}
				ex = exchange.Exchange{}
				h.identify(w, r, &ex)
				propagate(r.Header, &ex)
			})
			if got > tc.max {
				t.Errorf("%v allocations, want at most %v", got, tc.max)
			}
		})
	}
	var none *overload.Limiter
	if got := testing.AllocsPerRun(200, func() {
		if none.Acquire(context.Background()) == nil {
			none.Release(0, true)
		}
	}); got != 0 {
		t.Errorf("no limit: %v allocations", got)
	}
	l := overload.New(overload.Options{Adaptive: &overload.Adaptive{MinLimit: 1, MaxLimit: 100, InitialLimit: 100}})
	if got := testing.AllocsPerRun(200, func() {
		if l.Acquire(context.Background()) == nil {
			l.Release(1000, true)
		}
	}); got != 0 {
		t.Errorf("adaptive limit, admitted at once: %v allocations", got)
	}
}
