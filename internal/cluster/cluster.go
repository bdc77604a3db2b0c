// Package cluster forwards a request to one endpoint of an upstream: it
// picks the endpoint, sends the request through that endpoint's pool, and
// retries what is safe to retry. It also keeps the endpoint set, which
// discovery replaces as a whole (SetEndpoints), and the passive health of
// each endpoint (outlier detection).
package cluster

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/balance"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/pool"
)

// Options configure a Cluster.
type Options struct {
	Name   string
	Picker balance.Picker
	// NewPool makes the pool of a new endpoint.
	NewPool func(addr string) *pool.Pool
	// SlowStart ramps a new endpoint's share of traffic over this window.
	SlowStart time.Duration
	// Outlier detection: eject an endpoint after ConsecutiveFailures connect
	// failures or 5xx answers in a row (0 disables), for BaseEjection × the
	// number of times it was ejected, keeping at least (100-MaxEjectionPercent)%
	// of endpoints in rotation.
	ConsecutiveFailures int
	BaseEjection        time.Duration
	MaxEjectionPercent  int
	// Retry budget: retries in flight stay below max(MinRetries, BudgetPercent% of requests in flight).
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
	c := &Cluster{opt: opt, all: map[string]*endpoint.Endpoint{}}
	c.budget = NewBudget(opt.BudgetPercent, opt.MinRetries)
	c.set.Store(&snapshot{})
	return c
}

// RetriesRefused counts retries the cluster's own budget refused.
func (c *Cluster) RetriesRefused() uint64 { return c.budget.Exhausted() }

// Name returns the upstream name.
func (c *Cluster) Name() string { return c.opt.Name }

// SetEndpoints replaces the endpoint set (level-triggered: the whole set,
// every time). Endpoints whose address is still listed keep their state and
// pool. Listed-but-draining endpoints get no new requests (unless nothing
// else is left) and their idle connections are closed at once; removed ones
// are drained: in-flight requests finish, then their pool is released.
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
			e = endpoint.New(s, c.opt.NewPool(s.Addr), now)
			c.all[s.Addr] = e
		}
		if s.Weight > 0 && s.Weight != e.Weight { // unchanged: no write, which pickers read without a lock
			e.Weight = s.Weight
		}
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
			e.SetDraining(true)
			e.Pool.Drain(nil)
		}
	}
	c.publish(listed, now)
}

// Close drains every endpoint (the cluster was removed by a reload).
func (c *Cluster) Close() { c.SetEndpoints(nil) }

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

// Forward sends req (in client form: URL.Scheme and Path set, RequestURI
// empty) to an endpoint and returns the response with its headers read,
// retrying under p what is safe to retry. Errors are *exchange.Error.
func (c *Cluster) Forward(req *http.Request, p *Policy) (*http.Response, error) {
	ex := exchange.From(req.Context())
	bud := p.Budget
	if bud == nil {
		bud = c.budget
	}
	c.RequestsActive.Add(1)
	bud.active.Add(1)
	defer c.RequestsActive.Add(-1)
	defer bud.active.Add(-1)

	limit := p.BufferLimit
	if limit <= 0 {
		limit = DefaultPolicy.BufferLimit
	}
	replay, rec, err := bufferBody(req, limit)
	if err != nil {
		return nil, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.ClientBodyError, Err: err}
	}
	if replay != nil {
		defer replay.free()
	}
	idem := idempotent(req)

	ctx := req.Context()
	start := time.Now()
	var deadline time.Time
	if p.ResponseTimeout > 0 {
		deadline = start.Add(p.ResponseTimeout)
	}
	attempts := max(p.Attempts, 1)
	var tried []*endpoint.Endpoint
	var triedBuf [4]*endpoint.Endpoint
	tried = triedBuf[:0]
	var last *pool.Error
	sameOK := true
	retrying := false // a budgeted retry is in flight
	defer func() {
		if retrying {
			bud.done()
		}
	}()
	for try := 1; ; try++ {
		now := time.Now()
		ep := c.pick(req, now, tried, sameOK)
		if ep == nil {
			if last != nil {
				return nil, c.fail(ex, last, deadline)
			}
			return nil, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: exchange.NoHealthyUpstream,
				Err: errors.New("upstream " + c.opt.Name + " has no endpoints")}
		}
		tried = append(tried, ep)
		if ex != nil {
			ex.Endpoint = ep.Addr
			ex.Attempts = try
		}
		tryDeadline := deadline
		if p.PerTryTimeout > 0 {
			if d := now.Add(p.PerTryTimeout); tryDeadline.IsZero() || d.Before(tryDeadline) {
				tryDeadline = d
			}
		}
		if replay != nil && try > 1 {
			// A fresh reader per retry: an HTTP/2 stream's writer may still
			// hold the previous one.
			req.Body = replay.fresh()
		}
		if rec != nil && try > 1 {
			body, n, _ := rec.resend() // decide made sure it can
			req.Body, req.ContentLength = body, n
			if n >= 0 {
				req.TransferEncoding = nil
			}
		}
		req.URL.Host = ep.Addr
		ep.Begin()
		resp, err := ep.Pool.RoundTrip(ctx, req, tryDeadline)
		ep.End()
		if retrying {
			bud.done()
			retrying = false
		}
		if err == nil {
			c.observe(ep, resp.StatusCode >= 500 && resp.StatusCode <= 504 && resp.StatusCode != 501)
			if try < attempts && idem && p.methodAllowed(req.Method) && slices.Contains(p.Statuses, resp.StatusCode) && canResend(req, replay, rec) && bud.try() {
				resp.Body.Close()
				c.Retries[RetryBackoff].Add(1)
				retrying = true
				if !sleep(ctx, backoff(p, try), deadline) {
					return nil, &exchange.Error{Status: http.StatusGatewayTimeout, Reason: exchange.ResponseTimeout, Err: context.DeadlineExceeded}
				}
				continue
			}
			if try > 1 {
				c.RetryOutcomes[1].Add(1)
			}
			return resp, nil
		}
		pe := err.(*pool.Error)
		if pe.Stage == pool.StageClientBody && rec != nil && rec.err != nil {
			pe.Err = rec.err // (*http.Request).Write wraps it in a type that hides it
		}
		last = pe
		c.Failures[pe.Stage].Add(1)
		if pe.Stage == pool.StageDial || (pe.Stage != pool.StageClientBody && pe.Stage != pool.StageWait) {
			c.observe(ep, pe.Stage == pool.StageDial || pe.Peer)
		}
		if ctx.Err() != nil {
			return nil, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: ctx.Err()}
		}
		d := decide(pe, idem, canResend(req, replay, rec), p)
		if d != NoRetry && !p.methodAllowed(req.Method) && !pe.NotProcessed() && pe.Stage != pool.StageDial && pe.Stage != pool.StageWait {
			d = NoRetry
		}
		if d == NoRetry || try >= attempts || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			if try > 1 {
				c.RetryOutcomes[0].Add(1)
			}
			return nil, c.fail(ex, pe, deadline)
		}
		// A request that provably was not processed is not a second load on
		// anyone: its retry is outside the budget (the attempts still bound it).
		if !pe.NotProcessed() {
			if !bud.try() {
				return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.RetryBudgetExhausted, Err: pe}
			}
			retrying = true
		}
		c.Retries[d].Add(1)
		// A connection that was never made says nothing good of that endpoint:
		// never go back to it. A dead pooled connection does not condemn it.
		sameOK = !(pe.Stage == pool.StageDial)
		if d == RetryBackoff && !sleep(ctx, backoff(p, try), deadline) {
			return nil, c.fail(ex, pe, deadline)
		}
	}
}

// canResend reports whether the body can be sent again.
func canResend(req *http.Request, replay *replay, rec *recorder) bool {
	if rec != nil {
		_, _, ok := rec.resend()
		return ok
	}
	return req.Body == nil || replay != nil
}

// fail turns the last try's error into what the client gets.
func (c *Cluster) fail(ex *exchange.Exchange, e *pool.Error, deadline time.Time) *exchange.Error {
	timeout := errors.Is(e.Err, context.DeadlineExceeded) || (!e.Peer && isTimeout(e.Err))
	switch {
	case e.Stage == pool.StageClientBody:
		return &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.ClientBodyError, Err: e}
	case e.Stage == pool.StageWait && errors.Is(e.Err, pool.ErrDraining):
		return &exchange.Error{Status: http.StatusServiceUnavailable, Reason: exchange.NoHealthyUpstream, Err: e}
	case e.Stage == pool.StageWait:
		return &exchange.Error{Status: http.StatusServiceUnavailable, Reason: exchange.UpstreamOverflow, Err: e}
	case e.Stage == pool.StageDial && timeout:
		return &exchange.Error{Status: http.StatusGatewayTimeout, Reason: exchange.UpstreamConnectTimeout, Err: e}
	case e.Stage == pool.StageDial:
		return &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.UpstreamConnectFailure, Err: e}
	case timeout:
		return &exchange.Error{Status: http.StatusGatewayTimeout, Reason: exchange.ResponseTimeout, Err: e}
	case e.Stage == pool.StageHeaders:
		return &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.UpstreamBadResponse, Err: e}
	default:
		return &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.UpstreamResetBeforeResp, Err: e}
	}
}

// observe feeds passive outlier detection.
func (c *Cluster) observe(ep *endpoint.Endpoint, failed bool) {
	if !failed {
		ep.Succeeded()
		return
	}
	if n := ep.Failed(); c.opt.ConsecutiveFailures > 0 && int(n) >= c.opt.ConsecutiveFailures {
		c.eject(ep)
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

func sleep(ctx context.Context, d time.Duration, deadline time.Time) bool {
	if !deadline.IsZero() && time.Now().Add(d).After(deadline) {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
