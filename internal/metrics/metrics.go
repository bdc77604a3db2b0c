// Package metrics defines Sluice's Prometheus metrics. Request metrics are
// recorded as requests finish (the per-listener request count, as they
// arrive); connection, pool, retry and endpoint metrics
// are read from the live objects' counters when /metrics is scraped, so they
// cost nothing on the request path. docs/metrics.md lists every metric.
package metrics

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// Metrics holds the registry and the request-path instruments.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inflight prometheus.Gauge
	protocol *prometheus.CounterVec

	// routes holds each route's series, looked up once (route).
	routes atomic.Pointer[map[routeKey]*routeMetrics]
	mu     sync.Mutex // serialises changes of routes
}

// New returns metrics registered in a new registry, with Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Requests finished, by route, upstream, status class (2xx..5xx) and reason (empty when proxied).",
		}, []string{"route", "upstream", "class", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "sluice_request_duration_seconds",
			Help:                            "Time from request start to the end of the response, by route and upstream.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"route", "upstream"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_request_bytes_total",
			Help: "Request body bytes received from clients, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_response_bytes_total",
			Help: "Response body bytes sent to clients, by route.",
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_requests_in_flight",
			Help: "Requests being served.",
		}),
		protocol: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_downstream_requests_total",
			Help: "Requests received from clients, by listener and protocol (HTTP/1.1, HTTP/2.0).",
		}, []string{"listener", "protocol"}),
	}
	r.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inflight, m.protocol)
	m.routes.Store(&map[routeKey]*routeMetrics{})
	return m
}

// Downstream counts the requests received on one proxy listener.
type Downstream struct {
	protocol *prometheus.CounterVec
	listener string
	h1       prometheus.Counter // the HTTP/1.1 child, looked up once
	h2       child[prometheus.Counter]
}

// Downstream returns the request counter of the listener labelled listener.
func (m *Metrics) Downstream(listener string) *Downstream {
	return &Downstream{protocol: m.protocol, listener: listener, h1: m.protocol.WithLabelValues(listener, "HTTP/1.1")}
}

// Request counts a request received with protocol proto (http.Request.Proto).
func (d *Downstream) Request(proto string) {
	switch proto {
	case "HTTP/1.1":
		d.h1.Inc()
	case "HTTP/2.0":
		d.h2.get(func() prometheus.Counter { return d.protocol.WithLabelValues(d.listener, proto) }).Inc()
	default:
		d.protocol.WithLabelValues(d.listener, proto).Inc()
	}
}

// Begin counts a request in flight; Observe ends it.
func (m *Metrics) Begin() { m.inflight.Inc() }

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func class(status int) string {
	if status >= 100 && status < 600 {
		return classes[status/100-1]
	}
	return strconv.Itoa(status)
}

// Observe records a finished request (proxy.Observer).
func (m *Metrics) Observe(ex *exchange.Exchange, method, path string, status int, reqBytes, respBytes int64, d time.Duration) {
	m.inflight.Dec()
	rm := m.route(ex.RouteID, ex.Upstream)
	rm.requests(status, ex.Reason).Inc()
	rm.duration.get(func() prometheus.Observer { return m.duration.WithLabelValues(rm.id, rm.upstream) }).Observe(d.Seconds())
	if reqBytes > 0 {
		rm.bytesIn.get(func() prometheus.Counter { return m.bytesIn.WithLabelValues(rm.id) }).Add(float64(reqBytes))
	}
	if respBytes > 0 {
		rm.bytesOut.get(func() prometheus.Counter { return m.bytesOut.WithLabelValues(rm.id) }).Add(float64(respBytes))
	}
}

// routeMetrics holds the series of one route's requests to one upstream:
// the children of the request metrics' vectors for its labels, each looked
// up once, on first use (so that a series appears when it is first
// counted, as it would without them).
type routeMetrics struct {
	m            *Metrics
	id, upstream string
	proxied      [len(classes)]child[prometheus.Counter] // sluice_requests_total with no reason, by class
	duration     child[prometheus.Observer]
	bytesIn      child[prometheus.Counter]
	bytesOut     child[prometheus.Counter]
}

// requests is the sluice_requests_total series of a request that ended with
// status and reason. Those the gateway answered itself (a reason) are
// looked up each time: they are not the hot path.
func (rm *routeMetrics) requests(status int, reason string) prometheus.Counter {
	if reason != "" || status < 100 || status >= 600 {
		return rm.m.requests.WithLabelValues(rm.id, rm.upstream, class(status), reason)
	}
	c := status/100 - 1
	return rm.proxied[c].get(func() prometheus.Counter {
		return rm.m.requests.WithLabelValues(rm.id, rm.upstream, classes[c], "")
	})
}

// child is a vector's child, looked up on first use and kept.
type child[T any] struct{ p atomic.Pointer[T] }

func (c *child[T]) get(lookup func() T) T {
	if p := c.p.Load(); p != nil {
		return *p
	}
	v := lookup() // a race looks up the same child twice: no harm
	c.p.Store(&v)
	return v
}

// routeKey names a routeMetrics.
type routeKey struct{ route, upstream string }

// route returns the series of route's requests to upstream. Routes are
// read from an immutable map, replaced (under mu) when a new pair appears:
// once per route and upstream, after a reload too.
func (m *Metrics) route(route, upstream string) *routeMetrics {
	k := routeKey{route, upstream}
	if rm := (*m.routes.Load())[k]; rm != nil {
		return rm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.routes.Load()
	if rm := old[k]; rm != nil {
		return rm
	}
	next := make(map[routeKey]*routeMetrics, len(old)+1)
	maps.Copy(next, old)
	rm := &routeMetrics{m: m, id: route, upstream: upstream}
	next[k] = rm
	m.routes.Store(&next)
	return rm
}
