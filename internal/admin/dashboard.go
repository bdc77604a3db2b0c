package admin

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// ui holds the dashboard's static files: no CDN, no build step.
//
//go:embed ui
var ui embed.FS

// Dashboard is what GET /dashboard.json answers, and what the page at / shows.
// It is read from the metrics registry at request time, so it says exactly
// what /metrics says, grouped for people; Routes is GET /config/routes.
type Dashboard struct {
	Time       time.Time  `json:"time"`
	DrainPhase string     `json:"drain_phase"` // serving, not_ready, closing, finishing, done
	Listeners  []Listener `json:"listeners"`
	Upstreams  []Upstream `json:"upstreams"`
	Reloads    Reloads    `json:"reloads"`
	Routes     any        `json:"routes"`
}

// Listener is one proxy listener's client connections.
type Listener struct {
	Name        string             `json:"name"`
	Connections map[string]float64 `json:"connections"` // by state: open, idle, active, released
	Protocols   map[string]float64 `json:"protocols"`   // open ones by protocol: http/1.1, h2, h2c, none
}

// Upstream is one upstream's endpoints and its failed tries.
type Upstream struct {
	Name      string             `json:"name"`
	InFlight  float64            `json:"in_flight"`
	Endpoints []Endpoint         `json:"endpoints"`
	Failures  map[string]float64 `json:"failures"` // by "stage/sent"
}

// Endpoint is one endpoint's state, load and pool.
type Endpoint struct {
	Address         string             `json:"address"`
	State           string             `json:"state"`                   // ready, draining, ejected, unhealthy
	EjectedUntil    *time.Time         `json:"ejected_until,omitempty"` // while ejected
	InFlight        float64            `json:"in_flight"`
	Pool            map[string]float64 `json:"pool"`                     // connections by state: open, idle, active
	KeepAliveWindow float64            `json:"keepalive_window_seconds"` // idle age up to which connections are reused
	Opened          float64            `json:"connections_opened"`
	Reused          float64            `json:"connections_reused"`
	Ejections       float64            `json:"ejections"`
}

// Reloads counts config reloads.
type Reloads struct {
	Success     float64        `json:"success"`
	Failure     float64        `json:"failure"`
	LastSuccess time.Time      `json:"last_success"`
	Recent      []ReloadRecord `json:"recent"` // the last reloads since start, newest first
}

var drainPhases = []string{"serving", "not_ready", "closing", "finishing", "done"}

// dashboard registers the page (/), its files (/ui/) and its data (/dashboard.json).
func (a *Admin) dashboard(mux *http.ServeMux) {
	files, _ := fs.Sub(ui, "ui")
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(files)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		http.ServeFileFS(w, r, files, "index.html")
	})
	mux.HandleFunc("GET /dashboard.json", func(w http.ResponseWriter, r *http.Request) {
		d, err := a.Dashboard()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(d)
	})
}

// Dashboard gathers the metrics into a Dashboard.
func (a *Admin) Dashboard() (*Dashboard, error) {
	d := &Dashboard{Time: time.Now().UTC(), DrainPhase: drainPhases[0], Listeners: []Listener{}, Upstreams: []Upstream{}}
	if a.Routes != nil {
		d.Routes = a.Routes()
	}
	d.Reloads.Recent = a.recentReloads()
	if a.Gatherer == nil {
		return d, nil
	}
	mfs, err := a.Gatherer.Gather()
	if err != nil {
		return nil, err
	}
	b := builder{d: d, listeners: map[string]*Listener{}, upstreams: map[string]*Upstream{}, endpoints: map[[2]string]*Endpoint{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			b.add(mf.GetName(), labels(m), value(m))
		}
	}
	b.finish()
	if a.EjectedUntil != nil {
		until := a.EjectedUntil()
		for i := range d.Upstreams {
			for j := range d.Upstreams[i].Endpoints {
				e := &d.Upstreams[i].Endpoints[j]
				if t, ok := until[d.Upstreams[i].Name][e.Address]; ok && e.State == "ejected" {
					t := t.UTC()
					e.EjectedUntil = &t
				}
			}
		}
	}
	return d, nil
}

// builder groups metric samples by listener, upstream and endpoint.
type builder struct {
	d         *Dashboard
	listeners map[string]*Listener
	upstreams map[string]*Upstream
	endpoints map[[2]string]*Endpoint
}

func (b *builder) add(name string, l map[string]string, v float64) {
	switch name {
	case "sluice_drain_phase":
		if i := int(v); i >= 0 && i < len(drainPhases) {
			b.d.DrainPhase = drainPhases[i]
		}
	case "sluice_config_reloads_total":
		if l["result"] == "success" {
			b.d.Reloads.Success = v
		} else {
			b.d.Reloads.Failure = v
		}
	case "sluice_config_last_reload_success_timestamp_seconds":
		b.d.Reloads.LastSuccess = time.Unix(int64(v), 0).UTC()
	case "sluice_downstream_connections":
		b.listener(l["listener"]).Connections[l["state"]] = v
	case "sluice_downstream_connections_by_protocol":
		b.listener(l["listener"]).Protocols[l["protocol"]] = v
	case "sluice_upstream_requests_in_flight":
		b.upstream(l["upstream"]).InFlight = v
	case "sluice_upstream_failures_total":
		b.upstream(l["upstream"]).Failures[l["stage"]+"/"+l["sent"]] = v
	case "sluice_upstream_endpoint_state":
		if v == 1 {
			b.endpoint(l).State = l["state"]
		}
	case "sluice_upstream_endpoint_requests_in_flight":
		b.endpoint(l).InFlight = v
	case "sluice_upstream_connections":
		b.endpoint(l).Pool[l["state"]] = v
	case "sluice_upstream_keepalive_window_seconds":
		b.endpoint(l).KeepAliveWindow = v
	case "sluice_upstream_connections_opened_total":
		b.endpoint(l).Opened = v
	case "sluice_upstream_connections_reused_total":
		b.endpoint(l).Reused = v
	case "sluice_upstream_ejections_total":
		b.endpoint(l).Ejections = v
	}
}

func (b *builder) listener(name string) *Listener {
	if x, ok := b.listeners[name]; ok {
		return x
	}
	x := &Listener{Name: name, Connections: map[string]float64{}, Protocols: map[string]float64{}}
	b.listeners[name] = x
	return x
}

func (b *builder) upstream(name string) *Upstream {
	if x, ok := b.upstreams[name]; ok {
		return x
	}
	x := &Upstream{Name: name, Endpoints: []Endpoint{}, Failures: map[string]float64{}}
	b.upstreams[name] = x
	return x
}

func (b *builder) endpoint(l map[string]string) *Endpoint {
	k := [2]string{l["upstream"], l["endpoint"]}
	if x, ok := b.endpoints[k]; ok {
		return x
	}
	b.upstream(k[0])
	x := &Endpoint{Address: k[1], Pool: map[string]float64{}}
	b.endpoints[k] = x
	return x
}

// finish puts the groups into d, sorted by name.
func (b *builder) finish() {
	for _, k := range sortedKeys(b.endpoints, func(k [2]string) string { return k[0] + "\x00" + k[1] }) {
		u := b.upstreams[k[0]]
		u.Endpoints = append(u.Endpoints, *b.endpoints[k])
	}
	for _, k := range sortedKeys(b.listeners, func(k string) string { return k }) {
		b.d.Listeners = append(b.d.Listeners, *b.listeners[k])
	}
	for _, k := range sortedKeys(b.upstreams, func(k string) string { return k }) {
		b.d.Upstreams = append(b.d.Upstreams, *b.upstreams[k])
	}
}

func sortedKeys[K comparable, V any](m map[K]V, str func(K) string) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(str(a), str(b)) })
	return keys
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
