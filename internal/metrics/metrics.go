// Package metrics defines Sluice's Prometheus metrics. Request metrics are
// recorded as requests finish (the per-listener request count, as they
// arrive); connection, pool, retry and endpoint metrics
// are read from the live objects' counters when /metrics is scraped, so they
// cost nothing on the request path. docs/metrics.md lists every metric.
package metrics

import (
	"strconv"
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
	return m
}

// Downstream counts the requests received on one proxy listener.
type Downstream struct {
	protocol *prometheus.CounterVec
	listener string
	h1       prometheus.Counter // the HTTP/1.1 child, looked up once
}

// Downstream returns the request counter of the listener labelled listener.
func (m *Metrics) Downstream(listener string) *Downstream {
	return &Downstream{protocol: m.protocol, listener: listener, h1: m.protocol.WithLabelValues(listener, "HTTP/1.1")}
}

// Request counts a request received with protocol proto (http.Request.Proto).
func (d *Downstream) Request(proto string) {
	if proto == "HTTP/1.1" {
		d.h1.Inc()
	} else {
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
	route := ex.RouteID
	m.requests.WithLabelValues(route, ex.Upstream, class(status), ex.Reason).Inc()
	m.duration.WithLabelValues(route, ex.Upstream).Observe(d.Seconds())
	if reqBytes > 0 {
		m.bytesIn.WithLabelValues(route).Add(float64(reqBytes))
	}
	if respBytes > 0 {
		m.bytesOut.WithLabelValues(route).Add(float64(respBytes))
	}
}
