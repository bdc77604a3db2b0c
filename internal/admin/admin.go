// Package admin serves the operator's port: liveness, readiness, metrics,
// the loaded routes, and pprof. It runs on its own listener and goroutines,
// so it answers while the proxy port is saturated.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin is the admin handler's state.
type Admin struct {
	ready atomic.Bool
	// Routes returns what /config/routes shows.
	Routes func() any
	// Drain, when set, is started by POST /drain.
	Drain func()
	// Reload, when set, is run by POST /reload and returns its error.
	Reload   func() error
	Gatherer prometheus.Gatherer
	// Saturation, with ReadySaturationThreshold > 0, turns readiness 503
	// while Saturation() >= ReadySaturationThreshold. Liveness never looks at it.
	Saturation               func() float64
	ReadySaturationThreshold float64
	// EjectedUntil, when set, tells the dashboard until when each ejected
	// endpoint is out (upstream → endpoint address → time).
	EjectedUntil func() map[string]map[string]time.Time

	reloads reloadHistory
	// Token, when set, must be sent as "Authorization: Bearer TOKEN" to
	// every endpoint but the health checks (guard.go).
	Token string
	// AllowedHosts are names, besides IP addresses and localhost, by which
	// the admin port may be reached (the Host header).
	AllowedHosts []string
}

// SetReady sets what /healthz/ready answers.
func (a *Admin) SetReady(r bool) { a.ready.Store(r) }

// Ready reports readiness.
func (a *Admin) Ready() bool { return a.ready.Load() }

// Handler returns the admin mux, behind the guard (guard.go).
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /healthz/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !a.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		}
		if a.ReadySaturationThreshold > 0 && a.Saturation != nil && a.Saturation() >= a.ReadySaturationThreshold {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("saturated\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /config/routes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.Routes())
	})
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		if a.Drain == nil {
			http.Error(w, "drain not available", http.StatusNotImplemented)
			return
		}
		a.Drain()
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("draining\n"))
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if a.Reload == nil {
			http.Error(w, "reload not available", http.StatusNotImplemented)
			return
		}
		if err := a.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Write([]byte("reloaded\n"))
	})
	a.dashboard(mux)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return a.guard(mux)
}
