// Package overload keeps the gateway up when a backend or the load goes bad.
// A Limiter admits requests up to a concurrency limit, lets a bounded number
// wait for a slot for at most a timeout, and sheds the rest at once, so that
// excess load gets a fast refusal instead of an unbounded queue. The limit is
// either fixed or adaptive (see Adaptive): it follows the latency the
// requests see, shrinking when latency rises over its baseline and growing
// back when it recovers or when a higher latency turns out to be the new
// normal.
package overload

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Limiter.
type Options struct {
	// Limit is the fixed concurrency limit, or the adaptive limit's ceiling
	// when Adaptive is set and its MaxLimit is 0.
	Limit int
	// Adaptive, when set, makes the limit follow latency.
	Adaptive *Adaptive
	// QueueSize requests may wait for a slot, each for at most QueueTimeout.
	QueueSize    int
	QueueTimeout time.Duration
	// Now is the clock of the adaptive limit's windows; nil = time.Now.
	Now func() time.Time
}

// Errors Acquire returns.
var (
	// ErrLimit: the limit was reached and the queue was full (or there is none).
	ErrLimit = errors.New("concurrency limit reached")
	// ErrQueueTimeout: the request waited QueueTimeout without getting a slot.
	ErrQueueTimeout = errors.New("queue wait timed out")
)

// Limiter is a concurrency limit with a bounded FIFO wait queue. It is safe
// for concurrent use.
type Limiter struct {
	opt Options
	now func() time.Time

	mu       sync.Mutex
	inflight int
	limit    float64
	queue    []*waiter
	grad     *gradient // nil when the limit is fixed

	// Read by scrapes without the lock.
	inflightA, queuedA atomic.Int64
	limitA             atomic.Int64
	stats              counters
}

type counters struct {
	admitted, shedLimit, shedTimeout, waits atomic.Uint64
	waitNanos                               atomic.Int64
}

type waiter struct {
	ch      chan struct{}
	granted bool
}

// New returns a limiter. A fixed limit of 0 and no Adaptive means no limit;
// New returns nil then, and a nil *Limiter admits everything.
func New(opt Options) *Limiter {
	if opt.Limit <= 0 && opt.Adaptive == nil {
		return nil
	}
	l := &Limiter{opt: opt, now: opt.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.limit = float64(opt.Limit)
	if a := opt.Adaptive; a != nil {
		a := *a
		if a.MaxLimit <= 0 {
			a.MaxLimit = opt.Limit
		}
		a.fill()
		l.grad = &gradient{opt: a, start: l.now()}
		l.limit = float64(a.InitialLimit)
	}
	l.limitA.Store(int64(l.limit))
	return l
}

// Acquire takes a slot, waiting in the queue if there is room, until the
// queue timeout or ctx ends. It returns ErrLimit or ErrQueueTimeout when the
// request is shed, and ctx's error when ctx ended first. On success the
// caller must call Release exactly once.
func (l *Limiter) Acquire(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if len(l.queue) == 0 && l.inflight < l.cap() {
		l.admit()
		l.mu.Unlock()
		return nil
	}
	if len(l.queue) >= l.opt.QueueSize {
		if l.grad != nil {
			l.grad.shed = true
		}
		l.mu.Unlock()
		l.stats.shedLimit.Add(1)
		return ErrLimit
	}
	w := &waiter{ch: make(chan struct{}, 1)}
	l.queue = append(l.queue, w)
	l.queuedA.Store(int64(len(l.queue)))
	if l.grad != nil {
		l.grad.shed = true // the limit, not the load, bounds concurrency now
	}
	l.mu.Unlock()

	start := time.Now()
	t := time.NewTimer(l.opt.QueueTimeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ch:
	case <-t.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		l.mu.Lock()
		if w.granted {
			err = nil // a slot came at the same moment: take it
		} else {
			l.remove(w)
		}
		l.mu.Unlock()
	}
	l.stats.waits.Add(1)
	l.stats.waitNanos.Add(int64(time.Since(start)))
	if err == ErrQueueTimeout {
		l.stats.shedTimeout.Add(1)
	}
	return err
}

// cap is the current limit as a count; it is never below 1.
func (l *Limiter) cap() int { return max(1, int(l.limit)) }

// admit counts a new request in flight; l.mu is held.
func (l *Limiter) admit() {
	l.inflight++
	l.inflightA.Store(int64(l.inflight))
	l.stats.admitted.Add(1)
	if l.grad != nil && l.inflight > l.grad.maxInflight {
		l.grad.maxInflight = l.inflight
	}
}

func (l *Limiter) remove(w *waiter) {
	for i, x := range l.queue {
		if x == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			break
		}
	}
	l.queuedA.Store(int64(len(l.queue)))
}

// Release gives the slot back. latency is how long the upstream took to
// answer (the adaptive limit's signal); sample false leaves it out (a
// request that never reached the upstream, or that the client ended).
func (l *Limiter) Release(latency time.Duration, sample bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.inflight--
	if l.grad != nil && sample {
		if next, ok := l.grad.sample(l.now(), latency, l.limit); ok {
			l.limit = next
			l.limitA.Store(int64(next))
		}
	}
	for len(l.queue) > 0 && l.inflight < l.cap() {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.queuedA.Store(int64(len(l.queue)))
		w.granted = true
		l.admit()
		w.ch <- struct{}{}
	}
	l.queuedA.Store(int64(len(l.queue)))
	l.inflightA.Store(int64(l.inflight))
	l.mu.Unlock()
}

// Stats is a snapshot of a limiter's state and counters.
type Stats struct {
	Limit, InFlight, Queued int
	// Admitted counts requests given a slot; ShedLimit those refused at once,
	// ShedTimeout those that waited in vain.
	Admitted, ShedLimit, ShedTimeout uint64
	// Waits counts requests that waited in the queue, WaitTime their total wait.
	Waits    uint64
	WaitTime time.Duration
}

// Stats returns the limiter's state without taking its lock.
func (l *Limiter) Stats() Stats {
	return Stats{
		Limit: int(l.limitA.Load()), InFlight: int(l.inflightA.Load()), Queued: int(l.queuedA.Load()),
		Admitted: l.stats.admitted.Load(), ShedLimit: l.stats.shedLimit.Load(), ShedTimeout: l.stats.shedTimeout.Load(),
		Waits: l.stats.waits.Load(), WaitTime: time.Duration(l.stats.waitNanos.Load()),
	}
}

// Saturation is in-flight ÷ limit: 1 when every slot is taken.
func (l *Limiter) Saturation() float64 {
	if l == nil {
		return 0
	}
	lim := max(1, l.limitA.Load())
	return float64(l.inflightA.Load()) / float64(lim)
}

// Limit returns the current limit.
func (l *Limiter) Limit() int { return max(1, int(l.limitA.Load())) }

// Adaptive configures a gradient concurrency limit, in the spirit of
// Netflix's Gradient2 and Envoy's adaptive concurrency filter.
//
// Every Window, the mean latency of the requests that finished in it is
// compared with a baseline: gradient = Tolerance × baseline ÷ latency,
// clamped to [0.5, 1]. Below 1 the limit shrinks towards limit × gradient;
// at 1 it grows by √limit, unless the window used less than half of it (the
// load, not the limit, bounded concurrency). The baseline drops at once to a
// lower latency and rises towards a higher one with BaselineHalfLife: a
// latency that stays high becomes the new normal and the limit grows back
// instead of sticking at its floor, and when latency recovers the gradient
// is 1 at once and the limit grows back within a few windows.
type Adaptive struct {
	MinLimit, MaxLimit, InitialLimit int
	Tolerance                        float64
	Window                           time.Duration
	BaselineHalfLife                 time.Duration
}

func (a *Adaptive) fill() {
	if a.MinLimit <= 0 {
		a.MinLimit = 1
	}
	if a.MaxLimit < a.MinLimit {
		a.MaxLimit = max(a.MinLimit, 1000)
	}
	if a.InitialLimit < a.MinLimit || a.InitialLimit > a.MaxLimit {
		a.InitialLimit = min(max(20, a.MinLimit), a.MaxLimit)
	}
	if a.Tolerance < 1 {
		a.Tolerance = 2
	}
	if a.Window <= 0 {
		a.Window = 100 * time.Millisecond
	}
	if a.BaselineHalfLife <= 0 {
		a.BaselineHalfLife = 30 * time.Second
	}
}

// shrinkSmoothing is the weight of a new, lower limit: how fast the limit
// follows a rise in latency.
const shrinkSmoothing = 0.5

// gradient is the adaptive limit's state; the Limiter's lock guards it.
type gradient struct {
	opt      Adaptive
	start    time.Time // of the current window
	sum      time.Duration
	n        int
	baseline float64 // seconds; 0 until the first window
	last     time.Time
	// maxInflight is the most requests in flight during the window; shed
	// is set when a request had to wait or was refused in it.
	maxInflight int
	shed        bool
}

// sample adds one latency and, at the end of a window, returns the new limit.
func (g *gradient) sample(now time.Time, d time.Duration, limit float64) (float64, bool) {
	g.sum += d
	g.n++
	if now.Sub(g.start) < g.opt.Window {
		return 0, false
	}
	next := g.update(now, limit)
	g.start, g.sum, g.n, g.maxInflight, g.shed = now, 0, 0, 0, false
	return next, true
}

func (g *gradient) update(now time.Time, limit float64) float64 {
	lat := (g.sum / time.Duration(g.n)).Seconds()
	lat = math.Max(lat, 1e-6)
	switch {
	case g.baseline == 0 || lat < g.baseline:
		g.baseline = lat
	default:
		elapsed := now.Sub(g.last).Seconds()
		alpha := 1 - math.Exp2(-elapsed/g.opt.BaselineHalfLife.Seconds())
		g.baseline += (lat - g.baseline) * alpha
	}
	g.last = now
	grad := math.Min(1, math.Max(0.5, g.opt.Tolerance*g.baseline/lat))
	if grad >= 1 {
		if !g.shed && float64(g.maxInflight)*2 < limit {
			return limit // the load, not the limit, bounded concurrency
		}
		limit += math.Sqrt(limit)
	} else {
		limit = limit*(1-shrinkSmoothing) + limit*grad*shrinkSmoothing
	}
	return math.Min(float64(g.opt.MaxLimit), math.Max(float64(g.opt.MinLimit), limit))
}
