// Package circuitbreaker is Spring Cloud Gateway's CircuitBreaker filter and
// its companion FallbackHeaders: a count-based breaker in the manner of
// Resilience4J (closed → open on a failure rate or a run of consecutive
// failures, open for a wait, then half-open with a bounded number of trial
// calls), with a fallback to a URL or to another route of the gateway.
package circuitbreaker

import (
	"sync"
	"time"
)

// State is a breaker's state.
type State uint8

const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string { return [...]string{"CLOSED", "OPEN", "HALF_OPEN"}[s] }

// Options configure a Breaker; zero values take Resilience4J's defaults.
type Options struct {
	// FailureRateThreshold in percent (default 50): the breaker opens when
	// at least this share of the calls in the window failed.
	FailureRateThreshold float64
	// SlidingWindowSize is the number of last calls considered (default 100).
	SlidingWindowSize int
	// MinimumNumberOfCalls before the failure rate counts (default 100,
	// capped at SlidingWindowSize).
	MinimumNumberOfCalls int
	// ConsecutiveFailures, when more than 0, also opens the breaker after
	// that many failures in a row.
	ConsecutiveFailures int
	// WaitDurationInOpenState before trial calls are let through (default 60s).
	WaitDurationInOpenState time.Duration
	// PermittedNumberOfCallsInHalfOpenState is the number of trial calls
	// (default 10); their failure rate decides between closed and open.
	PermittedNumberOfCallsInHalfOpenState int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.FailureRateThreshold <= 0 {
		o.FailureRateThreshold = 50
	}
	if o.SlidingWindowSize <= 0 {
		o.SlidingWindowSize = 100
	}
	if o.MinimumNumberOfCalls <= 0 {
		o.MinimumNumberOfCalls = 100
	}
	o.MinimumNumberOfCalls = min(o.MinimumNumberOfCalls, o.SlidingWindowSize)
	if o.WaitDurationInOpenState <= 0 {
		o.WaitDurationInOpenState = 60 * time.Second
	}
	if o.PermittedNumberOfCallsInHalfOpenState <= 0 {
		o.PermittedNumberOfCallsInHalfOpenState = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Breaker counts call outcomes and says whether the next call may go ahead.
// It is safe for concurrent use.
type Breaker struct {
	opt Options

	mu       sync.Mutex
	state    State
	gen      uint64 // changes with every state change; stale outcomes are ignored
	window   []bool // ring of outcomes, true = failed
	next     int
	n        int // outcomes in the window
	failures int // failed outcomes in the window
	consec   int
	openedAt time.Time
	// half-open trial calls: let through, finished, failed
	trials, trialsDone, trialsFailed int
}

// New returns a closed breaker.
func New(opt Options) *Breaker {
	opt.defaults()
	return &Breaker{opt: opt, window: make([]bool, opt.SlidingWindowSize)}
}

// A Ticket is one permitted call; hand it back with Done or Release.
type Ticket struct{ gen uint64 }

// Allow reports whether a call may go ahead now.
func (b *Breaker) Allow() (Ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open {
		if b.opt.Now().Sub(b.openedAt) < b.opt.WaitDurationInOpenState {
			return Ticket{}, false
		}
		b.transition(HalfOpen)
	}
	if b.state == HalfOpen {
		if b.trials >= b.opt.PermittedNumberOfCallsInHalfOpenState {
			return Ticket{}, false
		}
		b.trials++
	}
	return Ticket{b.gen}, true
}

// Done records the outcome of a permitted call.
func (b *Breaker) Done(t Ticket, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // the call began in an earlier state
	}
	switch b.state {
	case Closed:
		if b.n == len(b.window) {
			if b.window[b.next] {
				b.failures--
			}
		} else {
			b.n++
		}
		b.window[b.next] = failed
		b.next = (b.next + 1) % len(b.window)
		if failed {
			b.failures++
			b.consec++
		} else {
			b.consec = 0
		}
		if (b.opt.ConsecutiveFailures > 0 && b.consec >= b.opt.ConsecutiveFailures) ||
			(b.n >= b.opt.MinimumNumberOfCalls && float64(b.failures)*100 >= b.opt.FailureRateThreshold*float64(b.n)) {
			b.transition(Open)
		}
	case HalfOpen:
		b.trialsDone++
		if failed {
			b.trialsFailed++
			if b.opt.ConsecutiveFailures > 0 {
				b.transition(Open)
				return
			}
		}
		if b.trialsDone >= b.opt.PermittedNumberOfCallsInHalfOpenState {
			if float64(b.trialsFailed)*100 >= b.opt.FailureRateThreshold*float64(b.trialsDone) {
				b.transition(Open)
			} else {
				b.transition(Closed)
			}
		}
	}
}

// Release hands back a permitted call that says nothing about the backend
// (the client went away).
func (b *Breaker) Release(t Ticket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen == b.gen && b.state == HalfOpen {
		b.trials--
	}
}

// State returns the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && b.opt.Now().Sub(b.openedAt) >= b.opt.WaitDurationInOpenState {
		return HalfOpen
	}
	return b.state
}

func (b *Breaker) transition(s State) {
	b.state = s
	b.gen++
	b.n, b.next, b.failures, b.consec = 0, 0, 0, 0
	clear(b.window)
	b.trials, b.trialsDone, b.trialsFailed = 0, 0, 0
	if s == Open {
		b.openedAt = b.opt.Now()
	}
}
