package redisconn

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Errors a Guard returns without calling Redis.
var (
	ErrCircuitOpen = errors.New("redis: circuit open (Redis considered down)")
	ErrBusy        = errors.New("redis: too many calls in flight")
)

// GuardOptions configure a Guard. Zero values take the defaults shown.
type GuardOptions struct {
	Timeout        time.Duration // per call; default 100ms
	MaxConcurrency int           // calls in flight; default 256
	// Failures is how many infrastructure failures (timeouts, connection
	// errors) in a row open the circuit; default 5.
	Failures int
	// OpenFor is how long an open circuit refuses calls before one probe
	// call is let through; default 1s.
	OpenFor time.Duration
}

// A Guard wraps the Redis calls of one filter: each call gets a strict
// deadline; at most MaxConcurrency run at once (more are refused at once with
// ErrBusy, never queued); after Failures infrastructure failures in a row the
// circuit opens and calls are refused with ErrCircuitOpen for OpenFor, then a
// single probe decides whether it closes again. An error reply from Redis or
// redis.Nil is an answer, not a failure.
type Guard struct {
	o     GuardOptions
	stats *Stats
	sem   chan struct{}

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
}

// NewGuard returns a Guard counting its refusals in stats (may be nil).
func NewGuard(o GuardOptions, stats *Stats) *Guard {
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = 256
	}
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.OpenFor <= 0 {
		o.OpenFor = time.Second
	}
	return &Guard{o: o, stats: stats, sem: make(chan struct{}, o.MaxConcurrency)}
}

// Timeout is the per-call deadline.
func (g *Guard) Timeout() time.Duration { return g.o.Timeout }

// Do runs call with a context that ends after the Guard's timeout (or
// earlier, with ctx). It returns call's error, ErrBusy or ErrCircuitOpen.
func (g *Guard) Do(ctx context.Context, call func(ctx context.Context) error) error {
	probe, err := g.admit()
	if err != nil {
		g.count(KindCircuitOpen)
		return err
	}
	select {
	case g.sem <- struct{}{}:
	default:
		if probe {
			g.mu.Lock()
			g.probing = false
			g.mu.Unlock()
		}
		g.count(KindBusy)
		return ErrBusy
	}
	ctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
	err = call(ctx)
	cancel()
	<-g.sem
	g.done(probe, err)
	return err
}

func (g *Guard) count(kind string) {
	if g.stats != nil {
		g.stats.CountError(kind)
	}
}

// admit reports whether a call may go ahead, and whether it is the probe of
// a half-open circuit.
func (g *Guard) admit() (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.openUntil.IsZero() {
		return false, nil
	}
	if g.probing || time.Now().Before(g.openUntil) {
		return false, ErrCircuitOpen
	}
	g.probing = true
	return true, nil
}

// done records the outcome of a call.
func (g *Guard) done(probe bool, err error) {
	failed := isFailure(err)
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	switch {
	case !failed:
		g.failures = 0
		g.openUntil = time.Time{}
	case probe:
		g.openUntil = time.Now().Add(g.o.OpenFor)
	default:
		g.failures++
		if g.failures >= g.o.Failures && g.openUntil.IsZero() {
			g.openUntil = time.Now().Add(g.o.OpenFor)
		}
	}
}

// Open reports whether the circuit is open (calls are being refused).
func (g *Guard) Open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.openUntil.IsZero()
}

// isFailure reports whether err says Redis is unreachable or too slow.
func isFailure(err error) bool {
	switch Kind(err) {
	case KindTimeout, KindConnection, KindPoolTimeout:
		return true
	}
	return false
}
