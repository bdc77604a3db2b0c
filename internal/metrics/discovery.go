package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/internal/discovery"
)

// Discovery reads the counters of the running discovery sources at scrape
// time. Sources returns them (one per upstream with discovery).
type Discovery struct {
	Sources func() []*discovery.Stats
}

var (
	discoveryLabels     = []string{"upstream", "registry"}
	descDiscFetches     = prometheus.NewDesc("sluice_discovery_fetches_total", "Answers asked of the registry (fetches, blocking queries, watches), by result: success or failure.", append(discoveryLabels, "result"), nil)
	descDiscUp          = prometheus.NewDesc("sluice_discovery_registry_up", "1 if the registry answered the last request, 0 during an outage (the last endpoints stay in force).", discoveryLabels, nil)
	descDiscLastSuccess = prometheus.NewDesc("sluice_discovery_last_success_timestamp_seconds", "Unix time of the registry's last answer.", discoveryLabels, nil)
	descDiscEndpoints   = prometheus.NewDesc("sluice_discovery_endpoints", "Endpoints in the set last published, by state: ready or draining.", append(discoveryLabels, "state"), nil)
)

// Describe implements prometheus.Collector.
func (m *Discovery) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDiscFetches, descDiscUp, descDiscLastSuccess, descDiscEndpoints} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Discovery) Collect(ch chan<- prometheus.Metric) {
	for _, st := range m.Sources() {
		s := st.Snapshot()
		ch <- prometheus.MustNewConstMetric(descDiscFetches, prometheus.CounterValue, float64(s.Fetches-s.Failures), s.Upstream, s.Registry, "success")
		ch <- prometheus.MustNewConstMetric(descDiscFetches, prometheus.CounterValue, float64(s.Failures), s.Upstream, s.Registry, "failure")
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descDiscUp, prometheus.GaugeValue, up, s.Upstream, s.Registry)
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descDiscLastSuccess, prometheus.GaugeValue, float64(s.LastSuccess.UnixNano())/1e9, s.Upstream, s.Registry)
		}
		ch <- prometheus.MustNewConstMetric(descDiscEndpoints, prometheus.GaugeValue, float64(s.Ready), s.Upstream, s.Registry, "ready")
		ch <- prometheus.MustNewConstMetric(descDiscEndpoints, prometheus.GaugeValue, float64(s.Draining), s.Upstream, s.Registry, "draining")
	}
}
