package chaos

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

// An AdaptiveProxy is a Proxy that can run with an adaptive concurrency
// limit in front of its upstream (scenario 16). Proxies without it skip
// scenario 16.
type AdaptiveProxy interface {
	// StartAdaptive is Start with the adaptive limit on the route, its
	// floor at AdaptiveFloor.
	StartAdaptive(ctx context.Context, upstreams []string) (addr string, stop func(), err error)
	// ConcurrencyLimit returns the current limit of the instance at addr.
	ConcurrencyLimit(addr string) (int, bool)
}

// AdaptiveFloor is the adaptive limit's floor (min_limit) that
// AdaptiveProxy.StartAdaptive must configure.
const AdaptiveFloor = 10

// 16. The backend's latency goes from 20ms to 2s (for 60s, scaled), then
// back to 20ms, under an open-loop load. Excess load must be shed (503,
// reason overloaded) within about 1s; every request let through must
// succeed (goodput holds: no timeouts, no 5xx but the shed ones, and at
// least the floor's worth of successes per 2s); within 5s of the recovery
// every request must succeed again; and the limit must not stick at its
// floor.
func slowBackend(e *Env, p Proxy) (*Result, error) {
	ap, ok := p.(AdaptiveProxy)
	if !ok {
		return &Result{Skipped: "proxy has no adaptive concurrency limit (AdaptiveProxy)", Errors: map[string]int{}}, nil
	}
	const fast, slow = 20 * time.Millisecond, 2 * time.Second
	rs, err := e.Replicas(1, backend.Options{Latency: fast})
	if err != nil {
		return nil, err
	}
	addr, stop, err := ap.StartAdaptive(e.ctx, Addrs(rs))
	if err != nil {
		return nil, err
	}
	e.defer_(stop)
	c := e.Client(addr, ClientOptions{MaxIdleConnsPerHost: 512, Timeout: 5 * time.Second})

	warm, slowFor, tail := 3*time.Second, e.cfg.scaled(60*time.Second), 7*time.Second
	rate := e.cfg.Rate / 3
	start := time.Now()
	slowAt, fastAt := start.Add(warm), start.Add(warm+slowFor)
	waitSlow := e.after(warm, func() { rs[0].Backend.SetLatency(slow) })
	waitFast := e.after(warm+slowFor, func() { rs[0].Backend.SetLatency(fast) })

	// The limit, every 100ms.
	type sample struct {
		at    time.Time
		limit int
	}
	var samples []sample
	var mu sync.Mutex
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if l, ok := ap.ConcurrencyLimit(addr); ok {
					mu.Lock()
					samples = append(samples, sample{now, l})
					mu.Unlock()
				}
			}
		}
	}()
	c.OpenLoop(e.ctx, rate, warm+slowFor+tail)
	close(done)
	sampler.Wait()
	waitSlow()
	waitFast()
	res := e.check(c)

	var onset, recovery time.Duration = -1, 0
	shed, bad, slowOK := 0, 0, 0
	for _, o := range c.Outcomes() {
		isShed := o.Err == "status_503" && strings.Contains(o.Detail, `"overloaded"`)
		switch {
		case isShed:
			shed++
			if !o.Start.Before(slowAt) && (onset < 0 || o.Start.Sub(slowAt) < onset) {
				onset = o.Start.Sub(slowAt)
			}
		case o.Err != "":
			bad++
		case !o.Start.Before(slowAt) && o.Start.Before(fastAt):
			slowOK++
		}
		if o.Err != "" && !o.Start.Before(fastAt) {
			recovery = max(recovery, o.Start.Sub(fastAt))
		}
	}
	lowest, highest, secondHalf, end := 0, 0, 0, 0
	for _, s := range samples {
		if !s.at.Before(slowAt) && s.at.Before(fastAt) {
			if lowest == 0 || s.limit < lowest {
				lowest = s.limit
			}
			if s.at.After(slowAt.Add(slowFor / 2)) {
				secondHalf = max(secondHalf, s.limit)
			}
		}
		if s.at.After(fastAt.Add(tail - 2*time.Second)) {
			end = max(end, s.limit)
		}
		highest = max(highest, s.limit)
	}
	goodput := float64(slowOK) / slowFor.Seconds()
	wantGoodput := 0.8 * AdaptiveFloor / slow.Seconds()
	onsetOK := onset >= 0 && onset <= 1500*time.Millisecond
	// A floor-stuck limit is one that is still at the floor after the
	// latency came back (or, on a slow phase long enough for the baseline
	// to follow it, throughout that phase).
	notStuck := end > AdaptiveFloor && (slowFor < 10*time.Second || secondHalf > AdaptiveFloor)
	res.Pass = onsetOK && bad == 0 && res.DupPOSTs == 0 && goodput >= wantGoodput && recovery <= 5*time.Second && notStuck
	res.notef("%.0f req/s; latency %v → %v at %v for %v → %v", rate, fast, slow, warm, slowFor, fast)
	res.notef("first shed %v after the rise (want ≤ ~1s); %d shed with 503 overloaded; %d other failures", onset, shed, bad)
	res.notef("goodput while slow %.1f req/s (want ≥ %.1f); last failure %v after the recovery (want ≤ 5s)", goodput, wantGoodput, recovery)
	res.notef("limit: lowest %d while slow (floor %d), highest %d in its second half, %d at the end, %d overall", lowest, AdaptiveFloor, secondHalf, end, highest)
	return res, nil
}
