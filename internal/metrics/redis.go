package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/internal/redisconn"
)

// Redis reads the shared Redis client's counters at scrape time. Client
// returns the client in service, or nil when no redis block is configured.
type Redis struct {
	Client func() *redisconn.Client
}

var (
	descRedisLatency  = prometheus.NewDesc("sluice_redis_command_duration_seconds", "Latency of Redis commands (pipeline: one round trip of several), by command.", []string{"command"}, nil)
	descRedisErrors   = prometheus.NewDesc("sluice_redis_errors_total", "Redis call failures by kind: timeout, connection, pool_timeout, server (an error reply), canceled; and calls refused without reaching Redis: circuit_open, busy.", []string{"kind"}, nil)
	descRedisConns    = prometheus.NewDesc("sluice_redis_pool_connections", "Redis connections by state (idle, in_use).", []string{"state"}, nil)
	descRedisPoolHits = prometheus.NewDesc("sluice_redis_pool_acquisitions_total", "Connections taken from the Redis pool, by result (hit: an idle connection, miss: a new one, timeout: none in time).", []string{"result"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Redis) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRedisLatency, descRedisErrors, descRedisConns, descRedisPoolHits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Redis) Collect(ch chan<- prometheus.Metric) {
	c := m.Client()
	if c == nil {
		return
	}
	for name, h := range c.Stats.Commands() {
		count, sum, buckets := h.Snapshot()
		ch <- prometheus.MustNewConstHistogram(descRedisLatency, count, sum, buckets, name)
	}
	for kind, n := range c.Stats.Errors() {
		ch <- prometheus.MustNewConstMetric(descRedisErrors, prometheus.CounterValue, float64(n), kind)
	}
	ps := c.PoolStats()
	ch <- prometheus.MustNewConstMetric(descRedisConns, prometheus.GaugeValue, float64(ps.IdleConns), "idle")
	ch <- prometheus.MustNewConstMetric(descRedisConns, prometheus.GaugeValue, float64(ps.TotalConns-ps.IdleConns), "in_use")
	ch <- prometheus.MustNewConstMetric(descRedisPoolHits, prometheus.CounterValue, float64(ps.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(descRedisPoolHits, prometheus.CounterValue, float64(ps.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(descRedisPoolHits, prometheus.CounterValue, float64(ps.Timeouts), "timeout")
}
