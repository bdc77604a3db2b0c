package pool

// Ending connections in bulk. Each one closed gives its slot back, so a
// request waiting for a slot is served by it (see lease.go).

// closeIdle closes every idle connection; stale also marks every
// connection open now as stale, so that those leased retire when they
// come back.
func (p *Pool) closeIdle(r Reason, stale bool) {
	p.mu.Lock()
	if stale {
		p.gen++
	}
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.drop(c, r)
	}
}

// invalidate marks every connection stale after one was found closed or
// reset in a way that says the backend restarted on the same address, whose
// other pooled connections are dead too.
func (p *Pool) invalidate() { p.closeIdle(ReasonStale, true) }

// CloseIdle closes every idle connection.
func (p *Pool) CloseIdle() { p.closeIdle(ReasonDrain, false) }

// Drain stops new leases, closes idle connections now, and closes the
// others when their requests end. onEmpty runs once no connection is left
// (at once if none is open).
func (p *Pool) Drain(onEmpty func()) {
	p.mu.Lock()
	if p.draining {
		p.mu.Unlock()
		return
	}
	p.draining = true
	p.onEmpty = onEmpty
	waiters := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, ch := range waiters {
		ch <- drained
	}
	p.CloseIdle()
	if p.h2t != nil {
		p.drainH2()
	}
	sweeper.remove(p)
	p.mu.Lock()
	var f func()
	if p.open == 0 && p.draining {
		f, p.onEmpty = p.onEmpty, nil
	}
	p.mu.Unlock()
	if f != nil {
		f()
	}
}

// Retire closes idle connections now and every other connection when its
// request ends, while still serving requests (each on a new connection):
// the endpoint is terminating but serving, and should be used only if
// nothing else is left. Retire(false) undoes it.
func (p *Pool) Retire(on bool) {
	p.mu.Lock()
	p.retiring = on
	p.mu.Unlock()
	if on {
		p.CloseIdle()
		if p.h2t != nil {
			p.drainH2()
		}
	}
}

// Resume undoes Drain (an endpoint marked ready again).
func (p *Pool) Resume() {
	p.mu.Lock()
	was := p.draining
	p.draining = false
	p.onEmpty = nil
	p.mu.Unlock()
	if was {
		sweeper.add(p)
	}
}
