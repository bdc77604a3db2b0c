// Package cluster forwards a request to one endpoint of an upstream: it
// picks the endpoint, sends the request through that endpoint's pool, and
// retries what is safe to retry. It also keeps the endpoint set, which
// discovery replaces as a whole (SetEndpoints), and the passive health of
// each endpoint (outlier detection).
package cluster

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/balance"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/pool"
)

// Options configure a Cluster.
type Options struct {
	Name   string
	Picker balance.Picker
	// NewPool makes the pool of a new endpoint.
	NewPool func(addr string) *pool.Pool
	// PoolKey stands for the options NewPool makes pools with (a comparable
	// value): an endpoint kept in Registry is reused only by a cluster with
	// the same PoolKey.
	PoolKey any
	// Registry holds the upstream's live endpoints across the clusters a
	// reload makes for it; nil = the cluster's own.
	Registry *Registry
	// SlowStart ramps a new endpoint's share of traffic over this window.
	SlowStart time.Duration
	// Outlier detection: eject an endpoint after ConsecutiveFailures gateway
	// failures in a row (refused or failed connections, resets, timeouts,
	// garbled or 500/502/503/504 answers; 0 disables), for BaseEjection × its
	// ejection multiplier (see endpoint.Eject), keeping at least
	// (100-MaxEjectionPercent)% of endpoints in rotation.
	ConsecutiveFailures int
	BaseEjection        time.Duration
	MaxEjectionPercent  int
	// Retry budget: the retries of the last ten seconds stay below
	// BudgetPercent% of its requests; MinRetries in flight are always allowed.
	BudgetPercent int
	MinRetries    int
}

// Cluster is one upstream: its endpoints and how requests reach them.
type Cluster struct {
	opt    Options
	budget *Budget

	mu  sync.Mutex // serialises SetEndpoints and rebuilds
	all map[string]*endpoint.Endpoint
	// set is the current snapshot, replaced whole.
	set atomic.Pointer[snapshot]

	Retries        [3]atomic.Uint64 // by Decision (index 0 unused)
	RetryOutcomes  [2]atomic.Uint64 // [0] retried and failed, [1] retried and succeeded
	Failures       [8]atomic.Uint64 // by pool.Stage
	RequestsActive atomic.Int64
	retriesRefused atomic.Uint64
}

// snapshot is an immutable view of the endpoints.
type snapshot struct {
	listed   []*endpoint.Endpoint // in listing order, ready and draining
	eligible []*endpoint.Endpoint // what new requests may use
	// recheck is when an ejection ends and eligible must be recomputed (unix nanos; 0 = never).
	recheck int64
}

// New returns an empty cluster; SetEndpoints fills it.
func New(opt Options) *Cluster {
	if opt.Picker == nil {
		opt.Picker = &balance.RoundRobin{}
	}
	if opt.BudgetPercent <= 0 {
		opt.BudgetPercent = 20
	}
	if opt.MinRetries <= 0 {
		opt.MinRetries = 3
	}
	if opt.MaxEjectionPercent <= 0 {
		opt.MaxEjectionPercent = 50
	}
	if opt.BaseEjection <= 0 {
		opt.BaseEjection = 30 * time.Second
	}
	if opt.Registry == nil {
		opt.Registry = NewRegistry()
	}
	c := &Cluster{opt: opt, all: map[string]*endpoint.Endpoint{}}
	c.budget = NewBudget(opt.BudgetPercent, opt.MinRetries)
	c.set.Store(&snapshot{})
	return c
}

// RetriesRefused counts the retries of requests to this cluster that a
// retry budget refused: a route's own, or the cluster's for requests
// forwarded without one.
func (c *Cluster) RetriesRefused() uint64 { return c.retriesRefused.Load() }

// Name returns the upstream name.
func (c *Cluster) Name() string { return c.opt.Name }

// SetEndpoints replaces the endpoint set (level-triggered: the whole set,
// every time). Endpoints whose address is still listed keep their state and
// pool, here and in the registry's other clusters. Listed-but-draining
// endpoints get no new requests (unless nothing else is left) and their idle
// connections are closed at once; removed ones are released to the
// registry, which drains them once no cluster lists them: in-flight
// requests finish, then their pool is released.
func (c *Cluster) SetEndpoints(specs []endpoint.Spec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	listed := make([]*endpoint.Endpoint, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		if seen[s.Addr] {
			continue
		}
		seen[s.Addr] = true
		e := c.all[s.Addr]
		if e == nil {
			e = c.opt.Registry.acquire(s, c.opt.PoolKey, c.opt.NewPool, now)
			c.all[s.Addr] = e
		}
		e.SetWeight(s.Weight)
		if s.Draining && !e.Draining() {
			e.SetDraining(true)
			e.Pool.Retire(true)
		} else if !s.Draining && e.Draining() {
			e.SetDraining(false)
			e.Pool.Retire(false)
		}
		listed = append(listed, e)
	}
	for addr, e := range c.all {
		if !seen[addr] {
			delete(c.all, addr)
			c.opt.Registry.release(e)
		}
	}
	c.publish(listed, now)
}

// Close releases every endpoint (the cluster was replaced or removed by a
// reload): those no other cluster lists are drained.
func (c *Cluster) Close() { c.SetEndpoints(nil) }

// ClearActiveHealth marks every endpoint healthy again: for a cluster
// without active health checks whose endpoints one with them marked.
func (c *Cluster) ClearActiveHealth() {
	for _, e := range c.Endpoints() {
		e.SetUnhealthy(false)
	}
	c.Refresh()
}

// Endpoints returns the listed endpoints.
func (c *Cluster) Endpoints() []*endpoint.Endpoint { return c.set.Load().listed }

// publish computes what new requests may use and swaps the snapshot in.
// Preference: ready, healthy and not ejected; then ready (a cluster whose
// every endpoint looks bad still tries, as Envoy's panic threshold does);
// then draining ones (as kube-proxy does when only terminating endpoints are
// left). c.mu is held.
func (c *Cluster) publish(listed []*endpoint.Endpoint, now time.Time) {
	nowNs := now.UnixNano()
	var good, ready, draining []*endpoint.Endpoint
	var recheck int64
	for _, e := range listed {
		if e.Draining() {
			draining = append(draining, e)
			continue
		}
		ready = append(ready, e)
		if until := e.EjectedUntil(); until != 0 && nowNs < until {
			if recheck == 0 || until < recheck {
				recheck = until
			}
			continue
		}
		if e.Unhealthy() {
			continue
		}
		good = append(good, e)
	}
	eligible := good
	if len(eligible) == 0 {
		eligible = ready
	}
	if len(eligible) == 0 {
		eligible = draining
	}
	c.set.Store(&snapshot{listed: listed, eligible: eligible, recheck: recheck})
}

// Refresh recomputes eligibility after an endpoint's health changed.
func (c *Cluster) Refresh() {
	c.mu.Lock()
	c.publish(c.set.Load().listed, time.Now())
	c.mu.Unlock()
}

func (c *Cluster) eligible(now time.Time) []*endpoint.Endpoint {
	s := c.set.Load()
	if s.recheck != 0 && now.UnixNano() >= s.recheck {
		c.Refresh()
		s = c.set.Load()
	}
	return s.eligible
}

// pick chooses an endpoint not in tried, or, if every eligible endpoint was
// tried and sameOK, any eligible one.
func (c *Cluster) pick(r *http.Request, now time.Time, tried []*endpoint.Endpoint, sameOK bool) *endpoint.Endpoint {
	eps := c.eligible(now)
	if len(eps) == 0 {
		return nil
	}
	if len(tried) > 0 {
		rest := make([]*endpoint.Endpoint, 0, len(eps))
		for _, e := range eps {
			if !slices.Contains(tried, e) {
				rest = append(rest, e)
			}
		}
		if len(rest) == 0 {
			if !sameOK {
				return nil
			}
			rest = eps
		}
		eps = rest
	}
	e := c.opt.Picker.Pick(r, eps)
	if c.opt.SlowStart > 0 && len(eps) > 1 {
		if f := e.SlowStartFactor(now, c.opt.SlowStart); f < 1 && randFloat() > f {
			e = c.opt.Picker.Pick(r, eps)
		}
	}
	return e
}

// observe feeds passive outlier detection with what a try showed of ep.
func (c *Cluster) observe(ep *endpoint.Endpoint, v verdict) {
	switch v {
	case succeeded:
		ep.Succeeded()
	case failed:
		if n := ep.Failed(); c.opt.ConsecutiveFailures > 0 && int(n) >= c.opt.ConsecutiveFailures {
			c.eject(ep)
		}
	}
}

func (c *Cluster) eject(ep *endpoint.Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s := c.set.Load()
	ready, ejected := 0, 0
	for _, e := range s.listed {
		if e.Draining() {
			continue
		}
		ready++
		if e.Ejected(now.UnixNano()) {
			ejected++
		}
	}
	if ep.Ejected(now.UnixNano()) || (ejected+1)*100 > ready*c.opt.MaxEjectionPercent {
		return
	}
	ep.Eject(now, c.opt.BaseEjection)
	c.publish(s.listed, now)
}
