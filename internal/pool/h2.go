package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
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

type h2pool struct {
	mu    sync.Mutex
	conns []*h2conn
	t     *http2.Transport
}

func newH2(opt *Options) *h2pool {
	return &h2pool{t: &http2.Transport{
		AllowHTTP:                  true,
		ReadIdleTimeout:            30 * time.Second, // ping a silent connection
		PingTimeout:                5 * time.Second,
		IdleConnTimeout:            opt.MaxIdleTime,
		StrictMaxConcurrentStreams: true,
	}}
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
	c, reused, err := p.getH2(ctx)
	if err != nil {
		return nil, err
	}
	c.requests.Add(1)
	p.active.Add(1)
	// The deadline bounds the wait for response headers only: a timer
	// cancels the stream unless the headers came first, so long streams
	// (gRPC) are not cut.
	rctx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	var timer *time.Timer
	if !deadline.IsZero() {
		timer = time.AfterFunc(time.Until(deadline), func() { timedOut.Store(true); cancel() })
	}
	resp, err := c.cc.RoundTrip(req.WithContext(rctx))
	if timer != nil && !timer.Stop() && err == nil {
		// The deadline fired as the headers arrived: the stream is being cancelled.
		resp.Body.Close()
		resp, err = nil, context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		p.active.Add(-1)
		e := &Error{Stage: StageAwait, Reused: reused, Peer: isPeerClose(err), Err: err}
		switch {
		case notProcessed(err):
			e.Stage, e.Written, e.Err = StageWrite, 0, fmt.Errorf("%w: %v", errGoAwayNotProcessed, err)
		case ctx.Err() != nil:
			e.Err, e.Peer = ctx.Err(), false
		case timedOut.Load():
			e.Err, e.Peer = context.DeadlineExceeded, false
		}
		if !c.cc.CanTakeNewRequest() {
			p.retireH2(c, ReasonPeerClosed)
		}
		return nil, e
	}
	resp.Body = &h2body{rc: resp.Body, cancel: cancel, p: p, reused: reused}
	if p.opt.MaxRequestsPerConn > 0 && c.requests.Load() >= int64(p.opt.MaxRequestsPerConn) {
		p.retireH2(c, ReasonMaxRequests)
	}
	return resp, nil
}

type h2body struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
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

func (b *h2body) finish() {
	if b.done.CompareAndSwap(false, true) {
		b.cancel()
		b.p.active.Add(-1)
	}
}

// getH2 returns a connection that can take one more stream, or dials one.
func (p *Pool) getH2(ctx context.Context) (*h2conn, bool, error) {
	now := time.Now()
	h := p.h2
	h.mu.Lock()
	if p.draining {
		h.mu.Unlock()
		return nil, false, &Error{Stage: StageWait, Err: ErrDraining}
	}
	for _, c := range h.conns {
		if c.retiring.Load() {
			continue
		}
		if !c.expires.IsZero() && now.After(c.expires) {
			go p.retireH2(c, ReasonMaxLifetime)
			continue
		}
		if c.cc.CanTakeNewRequest() {
			h.mu.Unlock()
			p.reused.Add(1)
			return c, true, nil
		}
	}
	if p.opt.MaxConnections > 0 && len(h.conns) >= p.opt.MaxConnections {
		h.mu.Unlock()
		return nil, false, &Error{Stage: StageWait, Err: errors.New("all HTTP/2 connections are at their stream limit")}
	}
	h.mu.Unlock()
	c, err := p.dialH2(ctx)
	if err != nil {
		return nil, false, &Error{Stage: StageDial, Err: err}
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	p.open++
	h.mu.Unlock()
	return c, false, nil
}

func (p *Pool) dialH2(ctx context.Context) (*h2conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opt.ConnectTimeout)
	defer cancel()
	nc, err := p.dial(ctx, "tcp", p.opt.Addr)
	if err != nil {
		return nil, err
	}
	if p.opt.Protocol == H2 {
		cfg := p.opt.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			tc.Close()
			return nil, fmt.Errorf("%s did not negotiate h2 (ALPN %q)", p.opt.Addr, tc.ConnectionState().NegotiatedProtocol)
		}
		nc = tc
	}
	cc, err := p.h2.t.NewClientConn(nc)
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

// retireH2 stops new streams on c and closes it once its streams end.
func (p *Pool) retireH2(c *h2conn, r Reason) {
	if !c.retiring.CompareAndSwap(false, true) {
		return
	}
	h := p.h2
	h.mu.Lock()
	for i, x := range h.conns {
		if x == c {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			p.open--
			break
		}
	}
	h.mu.Unlock()
	p.closed[r].Add(1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if c.cc.Shutdown(ctx) != nil {
			c.cc.Close()
		}
	}()
}

// sweepH2 retires connections that are closed, too old, or idle too long.
func (p *Pool) sweepH2(now time.Time) {
	h := p.h2
	h.mu.Lock()
	conns := append([]*h2conn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
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
	h := p.h2
	h.mu.Lock()
	conns := append([]*h2conn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		p.retireH2(c, ReasonDrain)
	}
}

func (p *Pool) h2Stats(s *Stats) {
	h := p.h2
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Open = int64(len(h.conns))
	for _, c := range h.conns {
		if c.cc.State().StreamsActive == 0 {
			s.Idle++
		}
	}
}
