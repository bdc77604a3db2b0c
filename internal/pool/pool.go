// Package pool keeps the connections to one upstream endpoint, and knows
// their lifecycle exactly: when each was opened, last used and last seen
// alive; how many requests it carried; whether the backend announced or
// revealed when it closes idle connections; how far a failed request got.
//
// A Pool leases a connection for one request at a time (HTTP/1.1), most
// recently used first, checks it for a pending FIN or RST right before reuse
// without blocking, and never reuses it past the idle age the endpoint is
// known to tolerate (see keepalive.go). No goroutine is attached to an idle
// connection: a single sweeper visits all pools every sweepInterval.
package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Pool. Zero values mean the documented defaults.
type Options struct {
	// Addr is the endpoint, host:port.
	Addr string
	// Protocol is HTTP1 (the default), H2 (TLS, ALPN h2) or H2C.
	Protocol Protocol
	// TLS, when set, wraps each connection in a TLS client with this config.
	TLS *tls.Config
	// ConnectTimeout bounds dialing (and the TLS handshake). Default 3s.
	ConnectTimeout time.Duration
	// MaxIdleTime is the longest a connection stays idle. Default 4s, below
	// the shortest common backend keep-alive timeout (Node's 5s).
	MaxIdleTime time.Duration
	// MaxLifetime retires a connection once it is this old (less up to 20%
	// jitter, so connections opened together do not retire together). It is
	// never cut mid-request: it is retired when next idle. 0 = no limit.
	MaxLifetime time.Duration
	// MaxConnections bounds open connections; further requests wait. 0 = no limit.
	MaxConnections int
	// MaxRequestsPerConn retires a connection after this many requests. 0 = no limit.
	MaxRequestsPerConn int
	// Dial replaces the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

const (
	defaultConnectTimeout = 3 * time.Second
	defaultMaxIdleTime    = 4 * time.Second
)

// Reason says why a connection was closed.
type Reason uint8

const (
	ReasonIdleTimeout   Reason = iota // idle longer than MaxIdleTime
	ReasonMaxLifetime                 // older than MaxLifetime
	ReasonMaxRequests                 // carried MaxRequestsPerConn requests
	ReasonPeerClosed                  // the backend closed or reset it
	ReasonKeepAliveHint               // the backend asked (Connection: close, Keep-Alive) or its learned window passed
	ReasonStale                       // another connection to the endpoint failed on reuse
	ReasonError                       // a request on it failed
	ReasonAbandoned                   // the response body was not read to the end
	ReasonUpgraded                    // switched protocols (WebSocket), then ended
	ReasonDrain                       // the endpoint is draining or the pool closed
	numReasons
)

var reasonNames = [numReasons]string{"idle_timeout", "max_lifetime", "max_requests", "peer_closed", "keepalive_hint", "stale", "error", "abandoned", "upgraded", "drain"}

func (r Reason) String() string { return reasonNames[r] }

// Reasons lists every Reason, for metrics.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Stats are a Pool's counters, read without locking.
type Stats struct {
	Open, Idle, Active int64
	Opened             uint64
	Reused             uint64
	Closed             [numReasons]uint64
	Waited             uint64 // requests that waited for a connection (MaxConnections)
	WaitNanos          uint64
	Waiting            int64 // requests waiting for a connection now (HTTP/1)
	// Window is the idle age up to which connections are reused now.
	Window time.Duration
}

// Pool is the set of connections to one endpoint. It is safe for concurrent use.
type Pool struct {
	opt  Options
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu       sync.Mutex
	idle     []*conn // oldest first; the most recently used is last
	open     int     // idle + leased + being dialed
	waiters  []chan *conn
	gen      uint64
	ka       keepAlive
	draining bool // Drain: no new leases, release when empty
	retiring bool // Retire: leases allowed, but no connection is kept idle
	onEmpty  func()
	h2       *h2pool // set for H2 and H2C

	opened, reused, waited, waitNanos atomic.Uint64
	ttfb                              atomic.Int64 // low envelope of time to first response byte, ns
	closed                            [numReasons]atomic.Uint64
	active                            atomic.Int64
}

// New returns a pool for opt.Addr and registers it with the sweeper.
func New(opt Options) *Pool {
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = defaultConnectTimeout
	}
	if opt.MaxIdleTime <= 0 {
		opt.MaxIdleTime = defaultMaxIdleTime
	}
	p := &Pool{opt: opt, dial: opt.Dial}
	if opt.Protocol != HTTP1 {
		p.h2 = newH2(&p.opt)
	}
	if p.dial == nil {
		d := &net.Dialer{
			Timeout:         opt.ConnectTimeout,
			KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3},
		}
		p.dial = d.DialContext
	}
	sweeper.add(p)
	return p
}

// Addr returns the endpoint address.
func (p *Pool) Addr() string { return p.opt.Addr }

// RoundTrip sends req on a pooled or new connection and returns the response
// with its headers read. The body, when read to EOF, gives the connection
// back; closing it early discards the connection. Every error is an *Error.
//
// req must be in client form (URL.Host set, RequestURI empty). The deadline,
// if not zero, bounds everything up to the response headers; ctx cancels
// the whole exchange, body included.
func (p *Pool) RoundTrip(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	if p.h2 != nil {
		return p.roundTripH2(ctx, req, deadline)
	}
	c, reused, idleAge, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	p.active.Add(1)
	if !deadline.IsZero() {
		c.nc.SetDeadline(deadline)
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abort)
	}
	resp, rerr := c.roundTrip(req, reused, idleAge)
	if rerr != nil {
		if stop != nil && !stop() && ctx.Err() != nil {
			rerr.Err = ctx.Err()
			rerr.Peer = false
		}
		if reused && rerr.Peer && rerr.NoResponse() {
			p.invalidate(c, idleAge)
		}
		p.discard(c, ReasonError)
		return nil, rerr
	}
	if !deadline.IsZero() {
		c.nc.SetDeadline(time.Time{})
	}
	p.sawTTFB(time.Since(c.wroteAt))
	c.reusable = !resp.Close && !req.Close
	p.mu.Lock()
	if reused {
		p.ka.sawAlive(idleAge)
	}
	if r := p.ka.sawHeader(resp.Header); r >= 0 && (c.remaining < 0 || r < c.remaining) {
		c.remaining = r
	}
	p.mu.Unlock()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if stop != nil {
			stop()
		}
		resp.Body = &upgraded{c: c}
		return resp, nil
	}
	if resp.Body == http.NoBody {
		if stop == nil || stop() {
			p.put(c)
		} else {
			p.discard(c, ReasonError)
		}
		return resp, nil
	}
	resp.Body = &body{c: c, rc: resp.Body, stop: stop}
	return resp, nil
}

var aLongTimeAgo = time.Unix(1, 0)

// sawTTFB keeps a low envelope of the endpoint's time to first byte: it
// follows a faster sample at once and drifts up slowly (1/64 of the gap).
func (p *Pool) sawTTFB(d time.Duration) {
	old := p.ttfb.Load()
	n := int64(d)
	if old != 0 && n > old {
		n = old + (n-old)/64
	}
	p.ttfb.Store(n)
}

// rttBound is how long an RST answering a request may take to come back: a
// round trip, which the low envelope of time to first byte bounds from
// above, tripled, plus room for scheduling delays on a busy machine; never
// under 100ms nor over a second. Only a request that already failed waits.
func (p *Pool) rttBound() time.Duration {
	t := time.Duration(p.ttfb.Load())
	return min(max(3*t+20*time.Millisecond, 100*time.Millisecond), time.Second)
}

// get leases a connection: the most recently used idle one that is within
// the endpoint's keep-alive window, fresh, and passes the liveness probe; or
// a new one.
func (p *Pool) get(ctx context.Context) (c *conn, reused bool, idleAge time.Duration, err error) {
	for {
		now := time.Now()
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return nil, false, 0, &Error{Stage: StageWait, Err: ErrDraining}
		}
		n := len(p.idle)
		if n == 0 || now.Sub(p.idle[n-1].idleSince) > p.ka.window(p.opt.MaxIdleTime) {
			break // nothing reusable: the rest are older still
		}
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		gen := p.gen // invalidate changes it under p.mu
		p.mu.Unlock()
		idleAge = now.Sub(c.idleSince)
		if r, retire := c.retire(now, gen); retire {
			p.discard(c, r)
			continue
		}
		if !c.probe.probe() {
			p.mu.Lock()
			p.ka.sawClosed(c.lastAlive, idleAge)
			p.mu.Unlock()
			p.discard(c, ReasonPeerClosed)
			continue
		}
		p.reused.Add(1)
		return c, true, idleAge, nil
	}
	// p.mu is held.
	if p.opt.MaxConnections > 0 && p.open >= p.opt.MaxConnections {
		ch := make(chan *conn, 1)
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		start := time.Now()
		p.waited.Add(1)
		var got *conn
		select {
		case got = <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			removed := false
			for i, w := range p.waiters {
				if w == ch {
					p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
					removed = true
					break
				}
			}
			p.mu.Unlock()
			if removed {
				p.waitNanos.Add(uint64(time.Since(start)))
				return nil, false, 0, &Error{Stage: StageWait, Err: ctx.Err()}
			}
			got = <-ch // handed over while we gave up: pass it on
			p.waitNanos.Add(uint64(time.Since(start)))
			if got == drained {
				return nil, false, 0, &Error{Stage: StageWait, Err: ErrDraining}
			}
			if got != nil {
				p.recycle(got)
			} else {
				p.release()
			}
			return nil, false, 0, &Error{Stage: StageWait, Err: ctx.Err()}
		}
		p.waitNanos.Add(uint64(time.Since(start)))
		if got == drained {
			return nil, false, 0, &Error{Stage: StageWait, Err: ErrDraining}
		}
		if got != nil {
			// A connection handed over straight from its last request.
			if got.probe.probe() {
				p.reused.Add(1)
				return got, true, 0, nil
			}
			p.closeConn(got, ReasonPeerClosed) // keep its slot for our dial
		}
		// We own a slot: dial.
	} else {
		p.open++
		p.mu.Unlock()
	}
	c, err = p.connect(ctx)
	if err != nil {
		p.release()
		return nil, false, 0, &Error{Stage: StageDial, Err: err}
	}
	return c, false, 0, nil
}

// ErrDraining is returned for a request to a draining pool.
var ErrDraining = errors.New("endpoint is draining")

// drained is handed to waiters when the pool starts draining.
var drained = new(conn)

func (p *Pool) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opt.ConnectTimeout)
	defer cancel()
	nc, err := p.dial(ctx, "tcp", p.opt.Addr)
	if err != nil {
		return nil, err
	}
	raw := nc
	if p.opt.TLS != nil {
		tc := tls.Client(nc, p.opt.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	now := time.Now()
	c := &conn{pool: p, nc: nc, created: now, remaining: -1}
	if sc, ok := raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.probe = newProber(rc)
		}
	}
	c.cw.w = nc
	c.cr.r = nc
	c.abort = func() { nc.SetDeadline(aLongTimeAgo) }
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

// retire reports whether c must not carry another request, and why.
func (c *conn) retire(now time.Time, gen uint64) (Reason, bool) {
	switch {
	case c.gen != gen:
		return ReasonStale, true
	case !c.expires.IsZero() && now.After(c.expires):
		return ReasonMaxLifetime, true
	case c.pool.opt.MaxRequestsPerConn > 0 && c.requests >= c.pool.opt.MaxRequestsPerConn:
		return ReasonMaxRequests, true
	case c.remaining == 0:
		return ReasonKeepAliveHint, true
	}
	return 0, false
}

// put returns a connection after a complete response.
func (p *Pool) put(c *conn) {
	p.active.Add(-1)
	p.recycle(c)
}

// recycle makes c idle, hands it to a waiter, or closes it if it must retire.
func (p *Pool) recycle(c *conn) {
	now := time.Now()
	if c.remaining > 0 {
		c.remaining--
	}
	p.mu.Lock()
	reason, retire := c.retire(now, p.gen)
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
		p.closeConn(c, reason)
		p.release()
		return
	}
	c.idleSince = now
	c.lastAlive = 0
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		ch <- c
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes a leased connection.
func (p *Pool) discard(c *conn, r Reason) {
	p.active.Add(-1)
	p.closeConn(c, r)
	p.release()
}

// closeConn closes c; its slot is released separately.
func (p *Pool) closeConn(c *conn, r Reason) {
	c.nc.Close()
	p.closed[r].Add(1)
}

// release frees one connection slot, handing it to a waiter if any.
func (p *Pool) release() {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		ch <- nil // the slot passes to the waiter, which dials
		return
	}
	p.open--
	empty := p.open == 0 && p.draining
	f := p.onEmpty
	p.mu.Unlock()
	if empty && f != nil {
		f()
	}
}

// invalidate marks every idle connection stale after a reused connection was
// found closed or reset before any response: the typical sign of a backend
// restarted on the same address, whose other pooled connections are dead too.
func (p *Pool) invalidate(failed *conn, idleAge time.Duration) {
	p.mu.Lock()
	p.gen++
	p.ka.sawClosed(failed.lastAlive, idleAge)
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	for _, c := range idle {
		p.closeConn(c, ReasonStale)
	}
}

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
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	empty := p.open == 0
	waiters := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.closeConn(c, ReasonDrain)
	}
	for _, ch := range waiters {
		ch <- drained
	}
	if p.h2 != nil {
		p.drainH2()
	}
	sweeper.remove(p)
	if empty && onEmpty != nil {
		onEmpty()
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
		if p.h2 != nil {
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

// CloseIdle closes every idle connection.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	for _, c := range idle {
		p.closeConn(c, ReasonDrain)
	}
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	var s Stats
	if p.h2 != nil {
		p.h2Stats(&s)
		s.Window = p.opt.MaxIdleTime
	} else {
		p.mu.Lock()
		s.Open = int64(p.open)
		s.Idle = int64(len(p.idle))
		s.Waiting = int64(len(p.waiters))
		s.Window = p.ka.window(p.opt.MaxIdleTime)
		p.mu.Unlock()
	}
	s.Active = p.active.Load()
	s.Opened = p.opened.Load()
	s.Reused = p.reused.Load()
	s.Waited = p.waited.Load()
	s.WaitNanos = p.waitNanos.Load()
	for i := range s.Closed {
		s.Closed[i] = p.closed[i].Load()
	}
	return s
}
