package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
	"time"
)

// The slot discipline, for HTTP/1 and HTTP/2 alike (see Pool):
//
//   - A request leases an idle connection (HTTP/1) or shares one (HTTP/2);
//     failing that it takes a slot (slot) and dials with it.
//   - At the cap, an idle connection the pool would not reuse gives up its
//     slot; otherwise the request waits, until its context ends or its
//     deadline passes, for the first slot or connection given back.
//   - Every connection closed gives its slot back (release), and every slot
//     or connection given back goes to the first waiter before anything else.

// settleTime: an idle connection that came back less than this ago is
// leased only when no other one within the window has been idle longer. A
// backend that closes connections right after a response (a request limit
// it does not announce) sends its FIN a few ms after that response; a
// connection that has stayed open this long past its response was not
// closed that way.
const settleTime = 10 * time.Millisecond

// drained is handed to waiters when the pool starts draining; lookAgain,
// when a new HTTP/2 connection can take their request.
var (
	drained   = new(conn)
	lookAgain = new(conn)
)

// get leases an HTTP/1 connection: an idle one that is within the
// endpoint's keep-alive window, fresh, and passes the liveness probe; or a
// new one.
func (p *Pool) get(ctx context.Context, deadline time.Time) (c *conn, reused bool, idleAge time.Duration, err error) {
	for {
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return nil, false, 0, &Error{Stage: StageWait, Err: ErrDraining}
		}
		now := time.Now()
		c = p.takeIdle(now)
		if c == nil {
			break // p.mu is held
		}
		idleAge = now.Sub(c.idleSince)
		if r, retire := c.retire(now); retire {
			p.mu.Unlock()
			p.drop(c, r)
			continue
		}
		p.mu.Unlock()
		if !c.probe.probe() {
			p.endedIdle(c, idleAge)
			continue
		}
		p.reused.Add(1)
		return c, true, idleAge, nil
	}
	c, err = p.slot(ctx, deadline)
	if err != nil {
		return nil, false, 0, err
	}
	if c != nil {
		// Handed over straight from its last request.
		if c.probe.probe() {
			p.reused.Add(1)
			return c, true, 0, nil
		}
		p.closeConn(c, ReasonPeerClosed) // its slot is ours: dial with it
	}
	c, err = p.connect(ctx, deadline)
	if err != nil {
		p.release()
		return nil, false, 0, &Error{Stage: StageDial, Err: err}
	}
	return c, false, 0, nil
}

// takeIdle removes and returns the idle connection to lease, or nil: the
// most recently used one within the window, unless it came back less than
// settleTime ago and an older one within the window has settled. p.mu is held.
func (p *Pool) takeIdle(now time.Time) *conn {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	window := p.ka.window(p.opt.MaxIdleTime)
	i := n - 1
	if now.Sub(p.idle[i].idleSince) > window {
		return nil // the rest are older still
	}
	if now.Sub(p.idle[i].idleSince) < settleTime {
		for j := i - 1; j >= 0; j-- {
			if age := now.Sub(p.idle[j].idleSince); age > window {
				break
			} else if age >= settleTime {
				i = j
				break
			}
		}
	}
	c := p.idle[i]
	p.idle = slices.Delete(p.idle, i, i+1)
	return c
}

// slot gets the caller a slot to dial with. It is called with p.mu held and
// returns with it released: nil when a slot is the caller's, or a
// connection handed over by its last request (HTTP/1).
func (p *Pool) slot(ctx context.Context, deadline time.Time) (*conn, error) {
	if p.opt.MaxConnections <= 0 || p.open < p.opt.MaxConnections {
		p.open++
		p.mu.Unlock()
		return nil, nil
	}
	if len(p.idle) > 0 {
		// Idle, yet not reusable (past the window): it gives up its slot.
		c := p.idle[0]
		p.idle = slices.Delete(p.idle, 0, 1)
		p.mu.Unlock()
		p.closeConn(c, ReasonKeepAliveHint)
		return nil, nil
	}
	ch := make(chan *conn, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	return p.wait(ctx, deadline, ch)
}

// wait waits on ch for a slot or a connection, until ctx ends or the
// deadline passes.
func (p *Pool) wait(ctx context.Context, deadline time.Time, ch chan *conn) (*conn, error) {
	start := time.Now()
	p.waited.Add(1)
	defer func() { p.waitNanos.Add(uint64(time.Since(start))) }()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case c := <-ch:
		if c == drained {
			return nil, &Error{Stage: StageWait, Err: ErrDraining}
		}
		return c, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	i := slices.Index(p.waiters, ch)
	if i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
	}
	p.mu.Unlock()
	if i < 0 {
		// Something was handed over as we gave up: pass it on.
		switch c := <-ch; c {
		case drained, lookAgain:
		case nil:
			p.release()
		default:
			p.idleOrHand(c)
		}
	}
	return nil, &Error{Stage: StageWait, Err: err}
}

// release gives a slot back: to the first waiter, or up.
func (p *Pool) release() {
	p.mu.Lock()
	onEmpty := p.releaseLocked()
	p.mu.Unlock()
	if onEmpty != nil {
		onEmpty()
	}
}

// releaseLocked gives a slot back with p.mu held. It returns the drain's
// onEmpty if that was the last slot of a draining pool.
func (p *Pool) releaseLocked() func() {
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		ch <- nil // the slot passes to the waiter, which dials
		return nil
	}
	p.open--
	if p.open == 0 && p.draining {
		f := p.onEmpty
		p.onEmpty = nil
		return f
	}
	return nil
}

// put returns a leased connection after a complete response.
func (p *Pool) put(c *conn) {
	p.active.Add(-1)
	p.recycle(c)
}

// discard closes a leased connection.
func (p *Pool) discard(c *conn, r Reason) {
	p.active.Add(-1)
	p.drop(c, r)
}

// drop closes a connection that is not leased (or no longer) and gives its
// slot back.
func (p *Pool) drop(c *conn, r Reason) {
	p.closeConn(c, r)
	p.release()
}

// closeConn closes c; its slot is given back separately.
func (p *Pool) closeConn(c *conn, r Reason) {
	c.nc.Close()
	p.closed[r].Add(1)
}

// recycle makes c idle or hands it to a waiter, or closes it if it must retire.
func (p *Pool) recycle(c *conn) {
	now := time.Now()
	p.mu.Lock()
	reason, retire := c.retire(now)
	switch {
	case !c.reusable:
		reason, retire = ReasonKeepAliveHint, true
	case p.ka.noPool:
		reason, retire = ReasonKeepAliveHint, true
	case p.draining || p.retiring:
		reason, retire = ReasonDrain, true
	}
	if retire {
		p.mu.Unlock()
		p.drop(c, reason)
		return
	}
	c.idleSince = now
	c.lastAlive = 0
	p.idleOrHandLocked(c)
	p.mu.Unlock()
}

func (p *Pool) idleOrHand(c *conn) {
	p.mu.Lock()
	p.idleOrHandLocked(c)
	p.mu.Unlock()
}

// idleOrHandLocked hands c to the first waiter, or makes it idle. p.mu is held.
func (p *Pool) idleOrHandLocked(c *conn) {
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		ch <- c
		return
	}
	p.idle = append(p.idle, c)
}

// retire reports whether c must not carry another request, and why. p.mu is held.
func (c *conn) retire(now time.Time) (Reason, bool) {
	p := c.pool
	switch {
	case c.gen != p.gen:
		return ReasonStale, true
	case !c.expires.IsZero() && now.After(c.expires):
		return ReasonMaxLifetime, true
	case p.opt.MaxRequestsPerConn > 0 && c.requests >= p.opt.MaxRequestsPerConn:
		return ReasonMaxRequests, true
	case c.remaining == 0, p.ka.spent(c.requests):
		return ReasonKeepAliveHint, true
	}
	return 0, false
}

// dialRaw opens a TCP connection, and a TLS client over it when cfg is set;
// the dial and handshake end at ConnectTimeout or the deadline, whichever
// comes first. raw is the TCP connection.
func (p *Pool) dialRaw(ctx context.Context, deadline time.Time, cfg *tls.Config) (raw, nc net.Conn, err error) {
	d := p.opt.ConnectTimeout
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	raw, err = p.dial(ctx, "tcp", p.opt.Addr)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return raw, raw, nil
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, err
	}
	return raw, tc, nil
}

// connect dials a new HTTP/1 connection.
func (p *Pool) connect(ctx context.Context, deadline time.Time) (*conn, error) {
	raw, nc, err := p.dialRaw(ctx, deadline, p.opt.TLS)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	c := &conn{pool: p, nc: nc, created: now, remaining: -1}
	if sc, ok := raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.probe = newProber(rc)
		}
	}
	c.cw.c = c
	c.cr.r = nc
	c.abort = func() {
		c.noWrite.Store(true)
		nc.SetDeadline(aLongTimeAgo)
	}
	c.bw = bufio.NewWriterSize(&c.cw, 4<<10)
	c.br = bufio.NewReaderSize(&c.cr, 4<<10)
	if p.opt.MaxLifetime > 0 {
		c.expires = now.Add(p.opt.MaxLifetime - jitter(p.opt.MaxLifetime))
	}
	p.mu.Lock()
	c.gen = p.gen
	p.mu.Unlock()
	p.opened.Add(1)
	return c, nil
}

// jitter returns a random share of up to 20% of d, so that connections
// opened together do not retire together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(d)/5 + 1))
}
