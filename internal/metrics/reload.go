package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloads counts config reloads and remembers the last one that succeeded.
type Reloads struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// NewReloads registers the reload metrics in r.
func NewReloads(r prometheus.Registerer) *Reloads {
	m := &Reloads{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_config_reloads_total",
			Help: "Config reloads (file watch, SIGHUP, POST /reload), by result: success or failure (the old config kept serving).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last config load that succeeded (the start counts as one).",
		}),
	}
	// Both results exist from the start, so a rate() sees the first failure.
	m.total.WithLabelValues("success")
	m.total.WithLabelValues("failure")
	m.lastSuccess.SetToCurrentTime()
	r.MustRegister(m.total, m.lastSuccess)
	return m
}

// Observe records one reload.
func (m *Reloads) Observe(err error) {
	if err != nil {
		m.total.WithLabelValues("failure").Inc()
		return
	}
	m.total.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
}
