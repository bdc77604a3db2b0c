package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// Observe counts each request in the series of its route, upstream, status
// class and reason, creating a series only when it is first counted.
func TestObserveSeries(t *testing.T) {
	m := New()
	api := &exchange.Exchange{RouteID: "api", Upstream: "u"}
	m.Observe(api, "GET", "/", 200, 0, 5, time.Millisecond)
	m.Observe(api, "GET", "/", 204, 10, 0, time.Millisecond)
	m.Observe(api, "GET", "/", 503, 0, 0, time.Millisecond)
	failed := &exchange.Exchange{RouteID: "api", Upstream: "u", Reason: exchange.UpstreamConnectFailure}
	m.Observe(failed, "GET", "/", 502, 0, 40, time.Millisecond)
	m.Observe(&exchange.Exchange{Reason: exchange.NoRoute}, "GET", "/", 404, 0, 40, time.Millisecond)

	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"api", "u", "2xx", ""}, 2},
		{[]string{"api", "u", "5xx", ""}, 1},
		{[]string{"api", "u", "5xx", exchange.UpstreamConnectFailure}, 1},
		{[]string{"", "", "4xx", exchange.NoRoute}, 1},
	} {
		if got := value(t, m.requests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("sluice_requests_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if n := count(m.requests); n != 4 {
		t.Errorf("%d sluice_requests_total series, want 4", n)
	}
	if got := value(t, m.bytesIn.WithLabelValues("api")); got != 10 {
		t.Errorf("bytes in = %v, want 10", got)
	}
	if got := value(t, m.bytesOut.WithLabelValues("api")); got != 45 {
		t.Errorf("bytes out = %v, want 45", got)
	}
	if n := count(m.bytesIn); n != 1 {
		t.Errorf("%d sluice_request_bytes_total series, want 1 (none for a route without request bodies)", n)
	}
	if n := count(m.duration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}

// A proxied request's metrics are recorded without allocating, through
// children looked up once; concurrent first requests of new routes agree.
func TestObserveDoesNotAllocate(t *testing.T) {
	m := New()
	ex := &exchange.Exchange{RouteID: "api", Upstream: "u"}
	m.Begin()
	m.Observe(ex, "GET", "/", 200, 10, 10, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() {
		m.Begin()
		m.Observe(ex, "GET", "/", 200, 10, 10, time.Millisecond)
	}); n != 0 {
		t.Errorf("Observe allocates %v times, want 0", n)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, r := range []string{"a", "b", "c"} {
				m.Observe(&exchange.Exchange{RouteID: r, Upstream: "u"}, "GET", "/", 200, 0, 0, time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, r := range []string{"a", "b", "c"} {
		if got := value(t, m.requests.WithLabelValues(r, "u", "2xx", "")); got != 4 {
			t.Errorf("route %s: %v requests, want 4", r, got)
		}
	}
}

// value is a counter's value.
func value(t *testing.T, c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// count is the number of series c holds.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// BenchmarkObserve is the metrics' share of a proxied request.
//
//	go test -run '^$' -bench Observe -benchmem ./internal/metrics
func BenchmarkObserve(b *testing.B) {
	m := New()
	ex := &exchange.Exchange{RouteID: "api-users", Upstream: "users"}
	b.ReportAllocs()
	for b.Loop() {
		m.Begin()
		m.Observe(ex, "GET", "/users/1", 200, 100, 1000, time.Millisecond)
	}
}
