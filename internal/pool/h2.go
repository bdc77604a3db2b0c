package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Protocol is how requests are carried to an endpoint.
type Protocol uint8

const (
	HTTP1 Protocol = iota
	// H2 is HTTP/2 over TLS (ALPN h2); H2C is HTTP/2 over cleartext with prior knowledge (gRPC backends).
	H2
	H2C
)

// h2conn is one HTTP/2 connection, multiplexing many requests. The
// standard library's x/net/http2 ClientConn owns the framing (and one read
// goroutine per connection, which HTTP/2 needs); the pool owns the
// lifecycle: how many connections, how old, when to retire them.
type h2conn struct {
	cc       *http2.ClientConn
	created  time.Time
	expires  time.Time
	requests atomic.Int64
	retiring atomic.Bool
}

func newH2Transport(opt *Options) *http2.Transport {
	return &http2.Transport{
		AllowHTTP:                  true,
		ReadIdleTimeout:            30 * time.Second, // ping a silent connection
		PingTimeout:                5 * time.Second,
		IdleConnTimeout:            opt.MaxIdleTime,
		StrictMaxConcurrentStreams: true,
	}
}

// errGoAwayNotProcessed is what a stream the server never processed fails with.
var errGoAwayNotProcessed = errors.New("http2: stream refused or above the GOAWAY last-stream-id: not processed")

// notProcessed reports whether x/net/http2 failed a stream that the server
// provably did not process: a stream above the GOAWAY last-stream-id, a
// REFUSED_STREAM reset, or a connection that could not take the request.
func notProcessed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream {
		return true
	}
	// x/net does not export these two errors; their text is stable API in practice.
	msg := err.Error()
	return strings.Contains(msg, "received Server's graceful shutdown GOAWAY") || strings.Contains(msg, "client conn not usable")
}

func (p *Pool) roundTripH2(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	c, reused, err := p.getH2(ctx, deadline)
	if err != nil {
		return nil, err
	}
	var wait time.Duration
	if !deadline.IsZero() {
		if wait = time.Until(deadline); wait <= 0 {
			return nil, &Error{Stage: StageWait, Err: context.DeadlineExceeded}
		}
	}
	c.requests.Add(1)
	p.active.Add(1)
	// The deadline bounds the wait for response headers only, counted from
	// the last progress in sending the request body: a timer cancels the
	// stream unless the headers came first, so long streams (gRPC) and long
	// uploads are not cut.
	rctx, cancel := context.WithCancel(ctx)
	dl := newH2Deadline(wait, cancel)
	out := req.WithContext(rctx)
	u := *req.URL // a retry changes the caller's URL; x/net may still read this one
	out.URL = &u
	var rb *h2ReqBody
	if req.Body != nil && req.Body != http.NoBody {
		rb = &h2ReqBody{rc: req.Body, dl: dl}
		out.Body = rb
	}
	resp, err := c.cc.RoundTrip(out)
	fired := !dl.stop() // after stop, the timer can no longer fire
	if fired && err == nil {
		// The deadline fired as the headers arrived: the stream is being cancelled.
		resp.Body.Close()
		resp, err = nil, context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		rb.release(ctx)
		p.active.Add(-1)
		e := &Error{Stage: StageAwait, Reused: reused, Peer: isPeerClose(err), Err: err}
		switch {
		case notProcessed(err):
			e.Stage, e.Written, e.Err = StageWrite, 0, fmt.Errorf("%w: %v", errGoAwayNotProcessed, err)
		case ctx.Err() != nil:
			e.Err, e.Peer = ctx.Err(), false
		case fired:
			e.Err, e.Peer = context.DeadlineExceeded, false
		}
		if !c.cc.CanTakeNewRequest() {
			p.retireH2(c, ReasonPeerClosed)
		}
		return nil, e
	}
	resp.Body = &h2body{rc: resp.Body, cancel: cancel, req: rb, p: p, reused: reused}
	if p.opt.MaxRequestsPerConn > 0 && c.requests.Load() >= int64(p.opt.MaxRequestsPerConn) {
		p.retireH2(c, ReasonMaxRequests)
	}
	return resp, nil
}

// h2Deadline cancels a stream whose response headers do not come within
// wait of the last progress in sending its request.
type h2Deadline struct {
	mu      sync.Mutex
	t       *time.Timer
	wait    time.Duration
	stopped bool
	fired   bool
}

func newH2Deadline(wait time.Duration, cancel context.CancelFunc) *h2Deadline {
	d := &h2Deadline{wait: wait}
	if wait > 0 {
		d.t = time.AfterFunc(wait, func() {
			d.mu.Lock()
			fire := !d.stopped
			d.fired = fire
			d.mu.Unlock()
			if fire {
				cancel()
			}
		})
	}
	return d
}

// progress restarts the wait: more of the request was sent.
func (d *h2Deadline) progress() {
	d.mu.Lock()
	if d.t != nil && !d.stopped && !d.fired {
		d.t.Reset(d.wait)
	}
	d.mu.Unlock()
}

// stop ends the wait; it reports false if the deadline had fired.
func (d *h2Deadline) stop() bool {
	d.mu.Lock()
	d.stopped = true
	fired := d.fired
	d.mu.Unlock()
	if d.t != nil {
		d.t.Stop()
	}
	return !fired
}

// h2ReqBody is the request body as x/net's writer reads it. It counts as
// progress what the writer takes, and lets the pool wait until the writer
// is done with it: x/net may return from RoundTrip while still inside a
// Read, and a retry must not read the same body at the same time.
type h2ReqBody struct {
	rc   io.ReadCloser
	dl   *h2Deadline
	mu   sync.Mutex
	busy bool          // a Read is in progress
	shut bool          // no more Reads
	idle chan struct{} // closed once shut and not busy
}

var errBodyReleased = errors.New("pool: request body released")

func (b *h2ReqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		return 0, errBodyReleased
	}
	b.busy = true
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	b.dl.progress()
	b.mu.Lock()
	b.busy = false
	if b.shut {
		close(b.idle)
	}
	b.mu.Unlock()
	return n, err
}

func (b *h2ReqBody) Close() error {
	b.shutDown()
	return b.rc.Close()
}

func (b *h2ReqBody) shutDown() {
	b.mu.Lock()
	if !b.shut {
		b.shut = true
		b.idle = make(chan struct{})
		if !b.busy {
			close(b.idle)
		}
	}
	b.mu.Unlock()
}

// release stops further Reads and waits for one in progress to end, or
// for ctx to end.
func (b *h2ReqBody) release(ctx context.Context) {
	if b == nil {
		return
	}
	b.shutDown()
	select {
	case <-b.idle:
	case <-ctx.Done():
	}
}

type h2body struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	req    *h2ReqBody
	p      *Pool
	reused bool
	done   atomic.Bool
}

func (b *h2body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.finish()
		return n, &Error{Stage: StageBody, Reused: b.reused, Peer: isPeerClose(err), Err: err}
	}
	if err == io.EOF {
		b.finish()
	}
	return n, err
}

func (b *h2body) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}

// finish ends the stream. It stops further reads of the request body but
// does not wait for one in progress: a gRPC client may be waiting for this
// response's trailers before it sends more.
func (b *h2body) finish() {
	if b.done.CompareAndSwap(false, true) {
		b.cancel()
		if b.req != nil {
			b.req.shutDown()
		}
		b.p.active.Add(-1)
	}
}

// getH2 returns a connection that can take one more stream, or dials one
// with a slot of its own (see lease.go).
func (p *Pool) getH2(ctx context.Context, deadline time.Time) (*h2conn, bool, error) {
	for {
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return nil, false, &Error{Stage: StageWait, Err: ErrDraining}
		}
		now := time.Now()
		var found *h2conn
		var expired []*h2conn
		for _, c := range p.h2conns {
			if !c.expires.IsZero() && now.After(c.expires) {
				expired = append(expired, c)
				continue
			}
			if c.cc.CanTakeNewRequest() {
				found = c
				break
			}
		}
		if found != nil {
			p.mu.Unlock()
		} else {
			handed, err := p.slot(ctx, deadline) // releases p.mu
			if err != nil {
				return nil, false, err
			}
			if handed == lookAgain {
				continue // a new connection came up meanwhile
			}
		}
		for _, c := range expired {
			p.retireH2(c, ReasonMaxLifetime)
		}
		if found != nil {
			p.reused.Add(1)
			return found, true, nil
		}
		c, err := p.dialH2(ctx, deadline)
		if err != nil {
			p.release()
			return nil, false, &Error{Stage: StageDial, Err: err}
		}
		p.mu.Lock()
		p.h2conns = append(p.h2conns, c)
		waiters := p.waiters
		p.waiters = nil
		p.mu.Unlock()
		for _, ch := range waiters {
			ch <- lookAgain
		}
		return c, false, nil
	}
}

func (p *Pool) dialH2(ctx context.Context, deadline time.Time) (*h2conn, error) {
	var cfg *tls.Config
	if p.opt.Protocol == H2 {
		cfg = p.opt.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"}
	}
	_, nc, err := p.dialRaw(ctx, deadline, cfg)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		tc.Close()
		return nil, fmt.Errorf("%s did not negotiate h2 (ALPN %q)", p.opt.Addr, tc.ConnectionState().NegotiatedProtocol)
	}
	cc, err := p.h2t.NewClientConn(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.opened.Add(1)
	c := &h2conn{cc: cc, created: time.Now()}
	if p.opt.MaxLifetime > 0 {
		c.expires = c.created.Add(p.opt.MaxLifetime - jitter(p.opt.MaxLifetime))
	}
	return c, nil
}

// retireH2 stops new streams on c, gives its slot back, and closes it once
// its streams end.
func (p *Pool) retireH2(c *h2conn, r Reason) {
	if !c.retiring.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	var onEmpty func()
	if i := slices.Index(p.h2conns, c); i >= 0 {
		p.h2conns = slices.Delete(p.h2conns, i, i+1)
		onEmpty = p.releaseLocked()
	}
	p.mu.Unlock()
	p.closed[r].Add(1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if c.cc.Shutdown(ctx) != nil {
			c.cc.Close()
		}
	}()
	if onEmpty != nil {
		onEmpty()
	}
}

// sweepH2 retires connections that are closed, too old, or idle too long.
func (p *Pool) sweepH2(now time.Time) {
	for _, c := range p.h2Snapshot() {
		st := c.cc.State()
		switch {
		case st.Closed || st.Closing:
			p.retireH2(c, ReasonPeerClosed)
		case !c.expires.IsZero() && now.After(c.expires):
			p.retireH2(c, ReasonMaxLifetime)
		case st.StreamsActive == 0 && st.StreamsPending == 0 && !st.LastIdle.IsZero() && now.Sub(st.LastIdle) > p.opt.MaxIdleTime:
			p.retireH2(c, ReasonIdleTimeout)
		}
	}
}

func (p *Pool) drainH2() {
	for _, c := range p.h2Snapshot() {
		p.retireH2(c, ReasonDrain)
	}
}

func (p *Pool) h2Snapshot() []*h2conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.h2conns)
}
