// Package pool keeps the connections to one upstream endpoint, and knows
// their lifecycle exactly: when each was opened, last used and last seen
// alive; how many requests it carried; whether the backend announced or
// revealed when it closes idle connections; how far a failed request got.
//
// A Pool leases a connection for one request at a time (HTTP/1.1), most
// recently used first, checks it for a pending FIN or RST right before reuse
// without blocking, and never reuses it past the idle age or the number of
// requests the endpoint is known to tolerate (see keepalive.go). No
// goroutine is attached to an idle connection: a single sweeper visits all
// pools every sweepInterval.
//
// The files follow the jobs: lease.go is the slot discipline (leasing,
// waiting, giving back), lifecycle.go ends connections in bulk (drain,
// retire, invalidate) and sweep.go one by one, keepalive.go learns what the
// endpoint tolerates, conn.go carries one HTTP/1.1 exchange and h2.go the
// HTTP/2 ones.
package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
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
	Waiting            int64 // requests waiting for a connection now
	// Window is the idle age up to which connections are reused now.
	Window time.Duration
}

// Pool is the set of connections to one endpoint. It is safe for concurrent use.
//
// Slots: every connection holds one slot from the moment its dial starts
// until it is closed, whether it is idle, leased, or (HTTP/2) multiplexed.
// open counts them, and with MaxConnections set it never exceeds the cap.
// A request that finds no usable connection and no free slot waits in
// waiters; every slot or connection given back goes to the first waiter
// before anything else (see lease.go). All of it is guarded by mu.
type Pool struct {
	opt  Options
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	h2t  *http2.Transport // set for H2 and H2C

	mu       sync.Mutex
	open     int          // slots held: idle + leased + being dialled (HTTP/1), conns + being dialled (HTTP/2)
	idle     []*conn      // HTTP/1, oldest first; the most recently used is last
	h2conns  []*h2conn    // HTTP/2, each taking many requests at once
	waiters  []chan *conn // FIFO; each gets one handed-over idle conn, nil (a slot to dial with), or drained
	gen      uint64
	ka       keepAlive
	draining bool // Drain: no new leases, release when empty
	retiring bool // Retire: leases allowed, but no connection is kept idle
	onEmpty  func()

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
		p.h2t = newH2Transport(&p.opt)
	}
	if p.dial == nil {
		d := &net.Dialer{
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
// req must be in client form (URL.Host set, RequestURI empty). A response
// that arrives while the request body is still being sent (an early 413 or
// 401) is returned at once; the rest of the body is not sent. When
// RoundTrip returns, nothing reads req.Body any more.
//
// The deadline, if not zero, bounds the wait for a connection and the dial;
// what is left of it when the request starts bounds the wait for the
// response headers counted from the end of the request's write, and every
// write's progress, so a long upload is not cut. ctx cancels the whole
// exchange, body included.
func (p *Pool) RoundTrip(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	if p.h2t != nil {
		return p.roundTripH2(ctx, req, deadline)
	}
	c, reused, idleAge, err := p.get(ctx, deadline)
	if err != nil {
		return nil, err
	}
	p.active.Add(1)
	var wait time.Duration
	if !deadline.IsZero() {
		if wait = time.Until(deadline); wait <= 0 {
			p.put(c) // untouched: nothing was sent
			return nil, &Error{Stage: StageWait, Err: context.DeadlineExceeded}
		}
	}
	c.noWrite.Store(false)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abort)
	}
	resp, rerr := c.roundTrip(req, reused, idleAge, wait)
	if rerr != nil {
		if stop != nil && !stop() && ctx.Err() != nil {
			rerr.Err = ctx.Err()
			rerr.Peer = false
		}
		if reused && rerr.Peer && rerr.NoResponse() {
			p.endedEarly(c, idleAge, rerr) // before the proof's wait: other requests learn from it at once
		}
		if rerr.fin && !rerr.Unread {
			rerr.Unread = c.proveUnread()
		}
		p.discard(c, ReasonError)
		if rerr.confirm > 0 && !rerr.Unread {
			rerr.Unread = p.awaitLimit(ctx, rerr.confirm, deadline)
		}
		return nil, rerr
	}
	if wait > 0 {
		c.nc.SetDeadline(time.Time{})
	}
	p.sawTTFB(time.Since(c.wroteAt))
	c.reusable = c.reusable && !resp.Close && !req.Close
	p.sawResponse(c, reused, idleAge, resp.Header)
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

// ErrDraining is returned for a request to a draining pool.
var ErrDraining = errors.New("endpoint is draining")

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	var s Stats
	p.mu.Lock()
	s.Open = int64(p.open)
	s.Waiting = int64(len(p.waiters))
	if p.h2t != nil {
		for _, c := range p.h2conns {
			if c.cc.State().StreamsActive == 0 {
				s.Idle++
			}
		}
		s.Window = p.opt.MaxIdleTime
	} else {
		s.Idle = int64(len(p.idle))
		s.Window = p.ka.window(p.opt.MaxIdleTime)
	}
	p.mu.Unlock()
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
