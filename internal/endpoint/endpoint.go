// Package endpoint is one backend address of an upstream and its live state:
// whether it is ready or draining, its requests in flight, its passive and
// active health, and its connection pool. The state outlives config reloads:
// a cluster keeps the Endpoint of an address that is still listed.
package endpoint

import (
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/pool"
)

// Spec is an endpoint as discovery or the config lists it.
type Spec struct {
	Addr   string
	Weight int // 1 when 0
	// Draining: still serving but terminating (Kubernetes serving && terminating).
	// It gets no new requests unless no ready endpoint is left.
	Draining bool
}

// Endpoint is one backend address and what the gateway knows of it.
type Endpoint struct {
	Addr  string
	Pool  *pool.Pool
	Added time.Time // for slow start

	weight atomic.Int32 // ≥ 1; discovery may change it while pickers read it

	draining     atomic.Bool
	inflight     atomic.Int64
	consecFails  atomic.Int32
	ejectedUntil atomic.Int64 // unix nanos of the last ejection's end; 0 = never ejected
	ejections    atomic.Int32 // the ejection multiplier: grows per ejection, decays in rotation
	unhealthy    atomic.Bool  // set by active health checks

	Requests, Failures, EjectionsTotal atomic.Uint64
}

// New returns a ready endpoint using p.
func New(s Spec, p *pool.Pool, now time.Time) *Endpoint {
	e := &Endpoint{Addr: s.Addr, Pool: p, Added: now}
	e.SetWeight(max(s.Weight, 1))
	e.draining.Store(s.Draining)
	return e
}

// Inherit takes old's state (failures, ejection, health, counters, age)
// for e, a new endpoint of the same address with a pool of its own (its
// pool options changed). e must not be in use yet.
func (e *Endpoint) Inherit(old *Endpoint) {
	e.Added = old.Added
	e.consecFails.Store(old.consecFails.Load())
	e.ejectedUntil.Store(old.ejectedUntil.Load())
	e.ejections.Store(old.ejections.Load())
	e.unhealthy.Store(old.unhealthy.Load())
	e.Requests.Store(old.Requests.Load())
	e.Failures.Store(old.Failures.Load())
	e.EjectionsTotal.Store(old.EjectionsTotal.Load())
}

// Weight is the endpoint's share of traffic relative to its peers (≥ 1).
func (e *Endpoint) Weight() int { return int(e.weight.Load()) }

// SetWeight changes the weight; w < 1 leaves it as it is.
func (e *Endpoint) SetWeight(w int) {
	if w >= 1 {
		e.weight.Store(int32(min(w, 1<<20)))
	}
}

// InFlight is the number of requests being served.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Begin and End bracket one request.
func (e *Endpoint) Begin() { e.inflight.Add(1); e.Requests.Add(1) }
func (e *Endpoint) End()   { e.inflight.Add(-1) }

func (e *Endpoint) Draining() bool         { return e.draining.Load() }
func (e *Endpoint) SetDraining(d bool)     { e.draining.Store(d) }
func (e *Endpoint) Unhealthy() bool        { return e.unhealthy.Load() }
func (e *Endpoint) SetUnhealthy(u bool)    { e.unhealthy.Store(u) }
func (e *Endpoint) Ejected(now int64) bool { u := e.ejectedUntil.Load(); return u != 0 && now < u }
func (e *Endpoint) EjectedUntil() int64    { return e.ejectedUntil.Load() }

// Succeeded records a success, ending a run of failures.
func (e *Endpoint) Succeeded() {
	if e.consecFails.Load() != 0 {
		e.consecFails.Store(0)
	}
}

// Failed records a failure and returns the length of the current run.
func (e *Endpoint) Failed() int32 {
	e.Failures.Add(1)
	return e.consecFails.Add(1)
}

// Eject takes the endpoint out of rotation for base × its ejection
// multiplier, at most 10×base. The multiplier grows by one per ejection and
// decays by one per base period spent back in rotation since the last
// ejection ended (as Envoy's does), so an endpoint that failed often long
// ago is not punished as a repeat offender. Ejections are serialised by the
// cluster.
func (e *Endpoint) Eject(now time.Time, base time.Duration) time.Time {
	n := e.ejections.Load()
	if last := e.ejectedUntil.Load(); last != 0 && base > 0 && now.UnixNano() > last {
		n = max(0, n-int32(min(now.Sub(time.Unix(0, last))/base, 10)))
	}
	n = min(n+1, 10)
	e.ejections.Store(n)
	until := now.Add(base * time.Duration(n))
	e.ejectedUntil.Store(until.UnixNano())
	e.consecFails.Store(0)
	e.EjectionsTotal.Add(1)
	return until
}

// SlowStartFactor is the share of its weight a new endpoint gets, ramping
// linearly from 10% to 100% over window.
func (e *Endpoint) SlowStartFactor(now time.Time, window time.Duration) float64 {
	if window <= 0 {
		return 1
	}
	age := now.Sub(e.Added)
	if age >= window {
		return 1
	}
	return 0.1 + 0.9*float64(age)/float64(window)
}
