package metrics

import (
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/overload"
	"github.com/sluice-gw/sluice/internal/pool"
	"github.com/sluice-gw/sluice/internal/server"
)

// Live reads the counters of live objects at scrape time.
type Live struct {
	Clusters   func() []*cluster.Cluster
	DrainPhase func() int
	// Listeners are the proxy listeners, each with its listener label.
	Listeners []Listener
	// Global is the gateway-wide concurrency limit (nil = none); RouteLimits
	// the routes'. Both are read at scrape time: a reload may replace them.
	Global      func() *overload.Limiter
	RouteLimits func() map[string]*overload.Limiter
}

// Listener is one proxy listener and its listener label.
type Listener struct {
	Name   string
	Server *server.Server
}

var (
	descConns       = prometheus.NewDesc("sluice_upstream_connections", "Upstream connections by state (open, idle, active).", []string{"upstream", "endpoint", "state"}, nil)
	descOpened      = prometheus.NewDesc("sluice_upstream_connections_opened_total", "Upstream connections opened.", []string{"upstream", "endpoint"}, nil)
	descReused      = prometheus.NewDesc("sluice_upstream_connections_reused_total", "Requests sent on a reused upstream connection.", []string{"upstream", "endpoint"}, nil)
	descClosed      = prometheus.NewDesc("sluice_upstream_connections_closed_total", "Upstream connections closed, by reason.", []string{"upstream", "endpoint", "reason"}, nil)
	descWindow      = prometheus.NewDesc("sluice_upstream_keepalive_window_seconds", "Idle age up to which connections to the endpoint are reused now (learned or advertised).", []string{"upstream", "endpoint"}, nil)
	descPoolWait    = prometheus.NewDesc("sluice_upstream_pool_wait_seconds_total", "Time requests spent waiting for a connection (max_connections).", []string{"upstream", "endpoint"}, nil)
	descPoolWaiting = prometheus.NewDesc("sluice_upstream_pool_waiting", "Requests waiting for a connection to the endpoint now (pool.max_connections reached).", []string{"upstream", "endpoint"}, nil)
	descPoolWaited  = prometheus.NewDesc("sluice_upstream_pool_waits_total", "Requests that waited for a connection.", []string{"upstream", "endpoint"}, nil)
	descEPInflight  = prometheus.NewDesc("sluice_upstream_endpoint_requests_in_flight", "Requests in flight to the endpoint.", []string{"upstream", "endpoint"}, nil)
	descEPState     = prometheus.NewDesc("sluice_upstream_endpoint_state", "1 for the endpoint's current state (ready, draining, ejected, unhealthy).", []string{"upstream", "endpoint", "state"}, nil)
	descEjections   = prometheus.NewDesc("sluice_upstream_ejections_total", "Times the endpoint was ejected by outlier detection.", []string{"upstream", "endpoint"}, nil)
	descRetries     = prometheus.NewDesc("sluice_upstream_retries_total", "Retries started, by kind (immediate: nothing was sent or a pooled connection died; backoff).", []string{"upstream", "kind"}, nil)
	descRetryOut    = prometheus.NewDesc("sluice_upstream_retried_requests_total", "Requests that were retried, by final outcome.", []string{"upstream", "outcome"}, nil)
	descBudget      = prometheus.NewDesc("sluice_upstream_retry_budget_exhausted_total", "Retries refused by the upstream's retry budget.", []string{"upstream"}, nil)
	descFailures    = prometheus.NewDesc("sluice_upstream_failures_total", "Failed tries, by how far the request got (stage).", []string{"upstream", "stage", "sent"}, nil)
	descActive      = prometheus.NewDesc("sluice_upstream_requests_in_flight", "Requests in flight to the upstream.", []string{"upstream"}, nil)
	descDrain       = prometheus.NewDesc("sluice_drain_phase", "Drain phase: 0 serving, 1 not ready, 2 closing, 3 finishing, 4 done.", nil, nil)
	descDownOpen    = prometheus.NewDesc("sluice_downstream_connections", "Client connections by state: open; idle and active (of the open ones); released (of the idle ones: held without net/http's goroutine and buffers).", []string{"listener", "state"}, nil)
	descDownProto   = prometheus.NewDesc("sluice_downstream_connections_by_protocol", "Open client connections by protocol (http/1.1, h2, h2c; none before a first request).", []string{"listener", "protocol"}, nil)
	descDownAccept  = prometheus.NewDesc("sluice_downstream_connections_accepted_total", "Client connections accepted.", []string{"listener"}, nil)
	descDownClosed  = prometheus.NewDesc("sluice_downstream_connections_closed_total", "Client connections closed, by reason.", []string{"listener", "reason"}, nil)
	descDownRefused = prometheus.NewDesc("sluice_downstream_connections_refused_total", "Client connections refused at once because the listener's max_connections were open.", []string{"listener"}, nil)
	descTLSErrors   = prometheus.NewDesc("sluice_downstream_tls_handshake_errors_total", "TLS handshakes with clients that failed.", []string{"listener"}, nil)

	limitLabels     = []string{"scope", "route"}
	descLimit       = prometheus.NewDesc("sluice_concurrency_limit", "Current concurrency limit (fixed, or the adaptive limit's value); scope global or route.", limitLabels, nil)
	descLimInflight = prometheus.NewDesc("sluice_concurrency_in_flight", "Requests holding a slot of the limit.", limitLabels, nil)
	descLimSat      = prometheus.NewDesc("sluice_concurrency_saturation", "In-flight ÷ limit of the limit (1 = every slot taken).", limitLabels, nil)
	descLimQueue    = prometheus.NewDesc("sluice_concurrency_queue_length", "Requests waiting in the limit's queue.", limitLabels, nil)
	descLimWaits    = prometheus.NewDesc("sluice_concurrency_queue_waits_total", "Requests that waited in the limit's queue.", limitLabels, nil)
	descLimWait     = prometheus.NewDesc("sluice_concurrency_queue_wait_seconds_total", "Total time requests waited in the limit's queue.", limitLabels, nil)
	descLimAdmit    = prometheus.NewDesc("sluice_concurrency_admitted_total", "Requests given a slot of the limit.", limitLabels, nil)
	descLimShed     = prometheus.NewDesc("sluice_concurrency_shed_total", "Requests shed with 503 overloaded, by cause (limit: refused at once; queue_timeout: waited in vain).", []string{"scope", "route", "cause"}, nil)
	descSaturation  = prometheus.NewDesc("sluice_saturation", "The gateway's saturation: the highest in-flight ÷ limit of its global and route limits (0 without limits). What autoscalers and admin.ready_saturation_threshold use.", nil, nil)
)

// Describe implements prometheus.Collector.
func (l *Live) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descOpened, descReused, descClosed, descWindow, descPoolWait, descPoolWaited, descPoolWaiting,
		descEPInflight, descEPState, descEjections, descRetries, descRetryOut, descBudget, descFailures, descActive,
		descDrain, descDownOpen, descDownProto, descDownAccept, descDownClosed, descDownRefused, descTLSErrors,
		descLimit, descLimInflight, descLimSat, descLimQueue, descLimWaits, descLimWait, descLimAdmit, descLimShed, descSaturation} {
		ch <- d
	}
}

var stageSent = map[pool.Stage]string{
	pool.StageWait: "not_sent", pool.StageDial: "not_sent", pool.StageWrite: "maybe_sent",
	pool.StageAwait: "sent_no_response", pool.StageHeaders: "partial_response", pool.StageBody: "partial_response",
	pool.StageClientBody: "client_body",
}

// Collect implements prometheus.Collector.
func (l *Live) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	now := time.Now().UnixNano()
	if l.Clusters != nil {
		for _, c := range l.Clusters() {
			u := c.Name()
			for _, e := range c.Endpoints() {
				s := e.Pool.Stats()
				gauge(descConns, float64(s.Open), u, e.Addr, "open")
				gauge(descConns, float64(s.Idle), u, e.Addr, "idle")
				gauge(descConns, float64(s.Active), u, e.Addr, "active")
				counter(descOpened, float64(s.Opened), u, e.Addr)
				counter(descReused, float64(s.Reused), u, e.Addr)
				for _, r := range pool.Reasons() {
					counter(descClosed, float64(s.Closed[r]), u, e.Addr, r.String())
				}
				gauge(descWindow, s.Window.Seconds(), u, e.Addr)
				counter(descPoolWait, float64(s.WaitNanos)/1e9, u, e.Addr)
				counter(descPoolWaited, float64(s.Waited), u, e.Addr)
				gauge(descPoolWaiting, float64(s.Waiting), u, e.Addr)
				gauge(descEPInflight, float64(e.InFlight()), u, e.Addr)
				state := "ready"
				switch {
				case e.Draining():
					state = "draining"
				case e.Ejected(now):
					state = "ejected"
				case e.Unhealthy():
					state = "unhealthy"
				}
				for _, st := range []string{"ready", "draining", "ejected", "unhealthy"} {
					v := 0.0
					if st == state {
						v = 1
					}
					gauge(descEPState, v, u, e.Addr, st)
				}
				counter(descEjections, float64(e.EjectionsTotal.Load()), u, e.Addr)
			}
			counter(descRetries, float64(c.Retries[cluster.RetryNow].Load()), u, "immediate")
			counter(descRetries, float64(c.Retries[cluster.RetryBackoff].Load()), u, "backoff")
			counter(descRetryOut, float64(c.RetryOutcomes[1].Load()), u, "success")
			counter(descRetryOut, float64(c.RetryOutcomes[0].Load()), u, "failure")
			counter(descBudget, float64(c.RetriesRefused()), u)
			for st := pool.StageWait; st <= pool.StageClientBody; st++ {
				counter(descFailures, float64(c.Failures[st].Load()), u, st.String(), stageSent[st])
			}
			gauge(descActive, float64(c.RequestsActive.Load()), u)
		}
	}
	if l.DrainPhase != nil {
		gauge(descDrain, float64(l.DrainPhase()))
	}
	for _, lst := range l.Listeners {
		srv, ln := lst.Server, lst.Name
		cs := srv.Connections()
		gauge(descDownOpen, float64(cs.Open), ln, "open")
		gauge(descDownOpen, float64(cs.Idle), ln, "idle")
		gauge(descDownOpen, float64(cs.Open-cs.Idle), ln, "active")
		gauge(descDownOpen, float64(cs.Released), ln, "released")
		for proto, n := range cs.ByProtocol {
			gauge(descDownProto, float64(n), ln, proto)
		}
		counter(descDownAccept, float64(srv.Accepted.Load()), ln)
		for _, r := range server.CloseReasons() {
			counter(descDownClosed, float64(srv.ClosedBy[r].Load()), ln, r.String())
		}
		counter(descDownRefused, float64(srv.Refused.Load()), ln)
		counter(descTLSErrors, float64(srv.TLSHandshakeErrors.Load()), ln)
	}
	sat := 0.0
	limit := func(scope, route string, lim *overload.Limiter) {
		s := lim.Stats()
		gauge(descLimit, float64(s.Limit), scope, route)
		gauge(descLimInflight, float64(s.InFlight), scope, route)
		v := lim.Saturation()
		sat = max(sat, v)
		gauge(descLimSat, v, scope, route)
		gauge(descLimQueue, float64(s.Queued), scope, route)
		counter(descLimWaits, float64(s.Waits), scope, route)
		counter(descLimWait, s.WaitTime.Seconds(), scope, route)
		counter(descLimAdmit, float64(s.Admitted), scope, route)
		counter(descLimShed, float64(s.ShedLimit), scope, route, "limit")
		counter(descLimShed, float64(s.ShedTimeout), scope, route, "queue_timeout")
	}
	if g := l.global(); g != nil {
		limit("global", "", g)
	}
	if l.RouteLimits != nil {
		m := l.RouteLimits()
		for _, id := range slices.Sorted(maps.Keys(m)) {
			limit("route", id, m[id])
		}
	}
	gauge(descSaturation, sat)
}

// Saturation is the value of sluice_saturation, for readiness.
func (l *Live) Saturation() float64 {
	sat := l.global().Saturation()
	if l.RouteLimits != nil {
		for _, lim := range l.RouteLimits() {
			sat = max(sat, lim.Saturation())
		}
	}
	return sat
}

func (l *Live) global() *overload.Limiter {
	if l.Global == nil {
		return nil
	}
	return l.Global()
}
