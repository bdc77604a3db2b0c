package pool

import (
	"sync"
	"time"
)

// sweepInterval is how often idle connections are visited. It bounds how
// long a closed idle connection goes unnoticed, and so the resolution of
// keep-alive learning.
const sweepInterval = 100 * time.Millisecond

// probeAfter: idle connections younger than this are not probed by the
// sweeper (a busy endpoint's hot connections are checked on lease anyway).
const probeAfter = 200 * time.Millisecond

// sweeper is the one goroutine that visits idle connections, for every pool.
var sweeper = &sweepSet{pools: map[*Pool]struct{}{}}

type sweepSet struct {
	mu      sync.Mutex
	pools   map[*Pool]struct{}
	running bool
}

func (s *sweepSet) add(p *Pool) {
	s.mu.Lock()
	s.pools[p] = struct{}{}
	if !s.running {
		s.running = true
		go s.loop()
	}
	s.mu.Unlock()
}

func (s *sweepSet) remove(p *Pool) {
	s.mu.Lock()
	delete(s.pools, p)
	s.mu.Unlock()
}

// loop runs while any pool is registered.
func (s *sweepSet) loop() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	var pools []*Pool
	for now := range t.C {
		s.mu.Lock()
		if len(s.pools) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		pools = pools[:0]
		for p := range s.pools {
			pools = append(pools, p)
		}
		s.mu.Unlock()
		for _, p := range pools {
			p.sweep(now)
		}
		clear(pools)
	}
}

// sweep retires idle connections that are too old, finds those the peer has
// closed, and learns from both what the endpoint tolerates. Connections past
// the reuse window are kept as observers (at most maxObservers, the oldest)
// until MaxIdleTime, so their fate teaches the window without risking a
// request. Each connection closed gives its slot back.
func (p *Pool) sweep(now time.Time) {
	if p.h2t != nil {
		p.sweepH2(now)
		return
	}
	var doomed []*conn
	var reasons []Reason
	restarted := false
	p.mu.Lock()
	window := p.ka.window(p.opt.MaxIdleTime)
	observers := 0
	kept := p.idle[:0]
	for _, c := range p.idle { // oldest first
		age := now.Sub(c.idleSince)
		reason, retire := c.retire(now)
		switch {
		case retire:
		case age > p.opt.MaxIdleTime:
			reason, retire = ReasonIdleTimeout, true
		case age >= probeAfter && !c.probe.probe():
			restarted = restarted || p.sawEndLocked(c, c.requests, age) == newEnd
			reason, retire = ReasonPeerClosed, true
		default:
			if age >= probeAfter {
				c.lastAlive = age
				p.ka.sawAlive(age)
			}
			if age > window {
				if observers >= maxObservers {
					reason, retire = ReasonKeepAliveHint, true
				} else {
					observers++
				}
			}
		}
		if retire {
			doomed = append(doomed, c)
			reasons = append(reasons, reason)
			continue
		}
		kept = append(kept, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for i, c := range doomed {
		p.drop(c, reasons[i])
	}
	if restarted {
		p.invalidate()
	}
}
