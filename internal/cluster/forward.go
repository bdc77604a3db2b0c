package cluster

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/pool"
)

// forwarding is one request's way through the cluster: its policy, its
// replayable body, and what the tries so far have left. Forward reads as
// a loop of try, decide (next, a pure function), wait; finish is its one
// exit, where outcomes are recorded.
type forwarding struct {
	c    *Cluster
	req  *http.Request
	ctx  context.Context
	p    *Policy
	ex   *exchange.Exchange
	bud  *Budget
	body *body // nil: no body

	idem     bool
	deadline time.Time // of the whole request; zero = none
	try      int       // tries started
	// sameOK: a retry may go back to an endpoint already tried, when every
	// eligible one was. Not after a failed dial: a connection that was never
	// made says nothing good of that endpoint.
	sameOK   bool
	budgeted bool        // a retry counted by the budget is in flight
	last     *pool.Error // the last try's failure
}

// Forward sends req (in client form: URL.Scheme and Path set, RequestURI
// empty) to an endpoint and returns the response with its headers read,
// retrying under p what is safe to retry. Errors are *exchange.Error.
func (c *Cluster) Forward(req *http.Request, p *Policy) (*http.Response, error) {
	f := &forwarding{c: c, req: req, ctx: req.Context(), p: p, ex: exchange.From(req.Context()), bud: p.Budget, sameOK: true}
	if f.bud == nil {
		f.bud = c.budget
	}
	c.RequestsActive.Add(1)
	f.bud.request(time.Now())
	resp, err := f.run()
	f.finish(resp, err)
	return resp, err
}

func (f *forwarding) run() (*http.Response, error) {
	var err error
	if f.body, err = prepareBody(f.req, f.p.bufferLimit()); err != nil {
		return nil, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.ClientBodyError, Err: err}
	}
	// Once the body is ready (a small one was read in full): one reading
	// serves the deadline, the pick and the try's own deadline.
	now := time.Now()
	f.idem = idempotent(f.req, f.p)
	if f.p.ResponseTimeout > 0 {
		f.deadline = now.Add(f.p.ResponseTimeout)
	}
	if f.ex != nil && !f.ex.Deadline.IsZero() && (f.deadline.IsZero() || f.ex.Deadline.Before(f.deadline)) {
		f.deadline = f.ex.Deadline // the client's own, shorter (grpc-timeout)
	}
	var triedBuf [4]*endpoint.Endpoint // the endpoints tried (kept off f, so that f stays on the stack)
	tried := triedBuf[:0]
	for {
		ep := f.c.pick(f.req, now, tried, f.sameOK)
		if ep == nil {
			return nil, f.noEndpoint()
		}
		tried = append(tried, ep)
		resp, pe := f.send(ep, now)
		d := next(f.outcome(resp, pe), f.p)
		if d == NoRetry {
			return f.answer(resp, pe)
		}
		if !f.admit(pe) {
			if pe == nil {
				return resp, nil // the budget said no: the backend's answer stands
			}
			return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.RetryBudgetExhausted, Err: pe}
		}
		if d == RetryBackoff && !f.backoff() {
			return f.answer(resp, pe) // no time for another try, or the client left
		}
		if resp != nil {
			resp.Body.Close()
		}
		f.c.Retries[d].Add(1)
		now = time.Now()
	}
}

// send makes one try on ep, starting now, and feeds outlier detection with
// what it showed.
func (f *forwarding) send(ep *endpoint.Endpoint, now time.Time) (*http.Response, *pool.Error) {
	f.try++
	if f.ex != nil {
		f.ex.Endpoint = ep.Addr
		f.ex.Attempts = f.try
	}
	if f.try > 1 {
		f.body.rewind(f.req)
	}
	tryDeadline := f.deadline
	if f.p.PerTryTimeout > 0 {
		if d := now.Add(f.p.PerTryTimeout); tryDeadline.IsZero() || d.Before(tryDeadline) {
			tryDeadline = d
		}
	}
	f.req.URL.Host = ep.Addr
	ep.Begin()
	resp, err := ep.Pool.RoundTrip(f.ctx, f.req, tryDeadline)
	ep.End()
	if f.budgeted {
		f.bud.done()
		f.budgeted = false
	}
	var pe *pool.Error
	if err != nil {
		pe = err.(*pool.Error)
		if pe.Stage == pool.StageClientBody {
			if cerr := f.body.clientErr(); cerr != nil {
				pe.Err = cerr // (*http.Request).Write wraps it in a type that hides it
			}
		}
		f.c.Failures[pe.Stage].Add(1)
		f.last = pe
		f.sameOK = pe.Stage != pool.StageDial
	}
	f.c.observe(ep, verdictOf(resp, pe, f.ctx.Err() != nil))
	return resp, pe
}

// outcome describes the last try for next.
func (f *forwarding) outcome(resp *http.Response, pe *pool.Error) outcome {
	o := outcome{
		err:           pe,
		lastTry:       f.try >= max(f.p.Attempts, 1),
		idempotent:    f.idem,
		methodAllowed: f.p.methodAllowed(f.req.Method),
		clientGone:    f.ctx.Err() != nil,
		timeUp:        !f.deadline.IsZero() && !time.Now().Before(f.deadline),
	}
	if resp != nil {
		o.status = resp.StatusCode
	}
	// Whether the body can be sent again is asked only where it matters:
	// while a response streams, an HTTP/2 writer may still be sending it.
	if pe != nil || (!o.lastTry && o.idempotent && o.methodAllowed && slices.Contains(f.p.Statuses, o.status)) {
		o.replayable = f.body.replayable(f.req)
	}
	return o
}

// admit takes a place in the retry budget for a retry that may load the
// backend again. A request that provably was not processed is not a second
// load on anyone: its retry is outside the budget (attempts still bound it).
func (f *forwarding) admit(pe *pool.Error) bool {
	if pe != nil && pe.NotProcessed() {
		return true
	}
	if !f.bud.try(time.Now()) {
		f.c.retriesRefused.Add(1)
		return false
	}
	f.budgeted = true
	return true
}

// backoff waits before the next try; false when the wait would pass the
// deadline or the client left.
func (f *forwarding) backoff() bool {
	d := backoff(f.p, f.try)
	if !f.deadline.IsZero() && time.Now().Add(d).After(f.deadline) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// answer is what the client gets of the last try: the response as it came
// (a retriable status included: the backend's answer is the truth), or the
// failure as a status.
func (f *forwarding) answer(resp *http.Response, pe *pool.Error) (*http.Response, error) {
	if pe == nil {
		return resp, nil
	}
	if f.ctx.Err() != nil {
		return nil, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: f.ctx.Err()}
	}
	return nil, failure(pe)
}

func (f *forwarding) noEndpoint() error {
	if f.last != nil {
		return failure(f.last)
	}
	return &exchange.Error{Status: http.StatusServiceUnavailable, Reason: exchange.NoHealthyUpstream,
		Err: errors.New("upstream " + f.c.opt.Name + " has no endpoints")}
}

// finish is Forward's one exit: it records how retried requests ended and
// gives back what the request held.
func (f *forwarding) finish(resp *http.Response, err error) {
	if f.try > 1 {
		if err == nil {
			f.c.RetryOutcomes[1].Add(1)
		} else {
			f.c.RetryOutcomes[0].Add(1)
		}
	}
	if f.budgeted {
		f.bud.done()
	}
	f.body.free()
	f.c.RequestsActive.Add(-1)
}

// verdictOf is what a try says of its endpoint for outlier detection: a
// gateway failure (a refused or failed connection, a reset, a timeout, a
// garbled or 5xx answer) or a success; ignored when the try says nothing of
// the endpoint (the pool was full, the client's body failed or the client
// left).
func verdictOf(resp *http.Response, pe *pool.Error, clientGone bool) verdict {
	switch {
	case pe == nil:
		if s := resp.StatusCode; s == 500 || s == 502 || s == 503 || s == 504 {
			return failed
		}
		return succeeded
	case pe.Stage == pool.StageDial:
		return failed
	case pe.Stage == pool.StageWait || pe.Stage == pool.StageClientBody || clientGone:
		return unknown
	case pe.Peer || isTimeout(pe.Err) || errors.Is(pe.Err, context.DeadlineExceeded) || pe.Stage == pool.StageHeaders:
		return failed
	}
	return unknown
}

type verdict uint8

const (
	unknown verdict = iota
	succeeded
	failed
)

// failure turns the last try's error into what the client gets.
func failure(e *pool.Error) *exchange.Error {
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
