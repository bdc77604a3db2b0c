package circuitbreaker

import (
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreaker(t *testing.T) {
	tests := []struct {
		name  string
		opt   Options
		steps string // o = call ok, f = call failed, x = call refused, w = wait the open duration, r = allowed then released
		want  State
	}{
		{name: "stays closed below minimum calls", opt: Options{MinimumNumberOfCalls: 4, SlidingWindowSize: 4}, steps: "fff", want: Closed},
		{name: "opens at the failure rate", opt: Options{MinimumNumberOfCalls: 4, SlidingWindowSize: 4}, steps: "offfx", want: Open},
		{name: "rate below threshold stays closed", opt: Options{MinimumNumberOfCalls: 4, SlidingWindowSize: 4, FailureRateThreshold: 75}, steps: "ofofoo", want: Closed},
		{name: "window slides: old failures age out", opt: Options{MinimumNumberOfCalls: 4, SlidingWindowSize: 4, FailureRateThreshold: 75}, steps: "ffooooof", want: Closed},
		{name: "consecutive failures open", opt: Options{ConsecutiveFailures: 3}, steps: "ofofffx", want: Open},
		{name: "after the wait, half-open", opt: Options{ConsecutiveFailures: 1}, steps: "fxw", want: HalfOpen},
		{name: "half-open lets a bounded number of trials through", opt: Options{ConsecutiveFailures: 1, PermittedNumberOfCallsInHalfOpenState: 2}, steps: "fw" + "AAx", want: HalfOpen},
		{name: "successful trials close", opt: Options{MinimumNumberOfCalls: 2, SlidingWindowSize: 2, PermittedNumberOfCallsInHalfOpenState: 2}, steps: "ffwoo", want: Closed},
		{name: "failed trials reopen", opt: Options{MinimumNumberOfCalls: 2, SlidingWindowSize: 2, PermittedNumberOfCallsInHalfOpenState: 2}, steps: "ffwofx", want: Open},
		{name: "a released trial frees its place", opt: Options{ConsecutiveFailures: 1, PermittedNumberOfCallsInHalfOpenState: 1}, steps: "fwro", want: Closed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(0, 0)}
			tc.opt.Now = c.now
			b := New(tc.opt)
			for i, s := range tc.steps {
				switch s {
				case 'w':
					c.advance(b.opt.WaitDurationInOpenState)
				case 'x':
					if _, ok := b.Allow(); ok {
						t.Fatalf("step %d: call allowed, want refused", i)
					}
				case 'A': // allowed, left in flight
					if _, ok := b.Allow(); !ok {
						t.Fatalf("step %d: call refused", i)
					}
				default:
					tk, ok := b.Allow()
					if !ok {
						t.Fatalf("step %d (%c): call refused in state %v", i, s, b.State())
					}
					switch s {
					case 'r':
						b.Release(tk)
					default:
						b.Done(tk, s == 'f')
					}
				}
			}
			if got := b.State(); got != tc.want {
				t.Errorf("state %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBreakerStaleOutcomeIgnored(t *testing.T) {
	b := New(Options{ConsecutiveFailures: 1, MinimumNumberOfCalls: 1, SlidingWindowSize: 1})
	slow, _ := b.Allow() // begins while closed
	fast, _ := b.Allow()
	b.Done(fast, true) // opens
	b.Done(slow, false)
	if b.State() != Open {
		t.Errorf("a call begun before the breaker opened closed it: %v", b.State())
	}
}
