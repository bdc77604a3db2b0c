package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Releasing idle connections.
//
// For every HTTP/1.1 keep-alive connection net/http keeps a goroutine
// blocked in a read and two 4 KiB buffers, for as long as the connection is
// open: about 21 KiB per idle client connection, and a gateway behind a load
// balancer holds tens of thousands of them. Once a connection has been idle
// for Options.ReleaseIdleAfter, the Server lets net/http end its serving
// goroutine (the buffers go back to net/http's pools) but keeps the socket: a
// small waiter holds it until the client sends again, then hands it back to
// the http.Server through a listener of its own. The client sees nothing:
// the same connection, keep-alive and idle deadline.
//
// It is done only where it is provably safe:
//   - plain-text HTTP/1.1 only: never under TLS (closing a *tls.Conn sends
//     close_notify), never on HTTP/2 (h2c), never on a hijacked connection;
//   - only in the read net/http makes while it waits for the next request,
//     and only when its buffer holds no byte of that request: the read lands
//     at the start of net/http's read buffer, where the connection's first
//     read landed (a read after a partial request lands further on).
//
// A connection's accounting (open, idle, Closed, ClosedBy, max_connections)
// is unchanged by a release: it stays open and idle until it really closes.

// errReleased ends net/http's wait for the next request on a connection
// that is being handed to a waiter.
var errReleased = errors.New("idle connection released")

// clientConn is an accepted client connection: it gives its max_connections
// place back when really closed, and carries the release machinery.
type clientConn struct {
	net.Conn
	s *Server

	// base is where the first read of this serve cycle landed: the start of
	// net/http's read buffer. Written by the serving goroutine only.
	base *byte
	// idle is set when net/http reports the connection idle and cleared by
	// the first byte read after that.
	idle atomic.Bool
	// noRelease: HTTP/2 or hijacked; never released.
	noRelease atomic.Bool
	// h2c: it began with the HTTP/2 client preface.
	h2c atomic.Bool
	// deadline is the read deadline net/http asked for (UnixNano, 0 = none).
	deadline atomic.Int64
	// releasing: the idle read ended to release, so the Close that follows
	// hands the socket to a waiter instead of closing it.
	releasing atomic.Bool
	// held: a waiter holds the socket; net/http does not serve it.
	held atomic.Bool
	// active: net/http is serving a request on it (StateActive).
	active atomic.Bool
	// readEnd is how the last failed read ended (a readEnd), for the close
	// reason; writeFailed, that a write failed.
	readEnd     atomic.Int32
	writeFailed atomic.Bool
	// handedBack receives net/http's StateClosed for a released connection:
	// only then may the waiter give it back.
	handedBack chan struct{}
	closeOnce  sync.Once
	// head copies what is read while net/http waits for a request head;
	// nil under TLS (framing.go).
	head *headTap
}

// readEnd is how a client connection's last failed read ended.
type readEnd int32

const (
	readOK      readEnd = iota
	readTimeout         // a read deadline passed
	readEOF             // the client closed or reset the connection
	readFailed          // any other error
)

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.read(p)
	if err != nil && err != errReleased {
		c.noteReadError(err)
	}
	return n, err
}

// noteReadError remembers how a read failed. A deadline during a request is
// net/http ending its own background read, not the client's doing.
func (c *clientConn) noteReadError(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !c.active.Load() {
			c.readEnd.Store(int32(readTimeout))
		}
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		c.readEnd.Store(int32(readEOF))
	case !errors.Is(err, net.ErrClosed):
		c.readEnd.Store(int32(readFailed))
	}
}

func (c *clientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.writeFailed.Store(true)
	}
	return n, err
}

func (c *clientConn) read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p)
	}
	first := c.base == nil
	if first {
		c.base = &p[0]
	} else if c.handedBack != nil && c.idle.Load() && &p[0] == c.base && !c.noRelease.Load() && !c.s.stopping.Load() {
		return c.idleRead(p)
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.idle.Store(false)
		if first && looksHTTP2(p[:n]) {
			c.h2c.Store(true)
			c.noRelease.Store(true)
		}
		if c.head != nil && !c.active.Load() && !c.h2c.Load() {
			c.head.add(p[:n])
		}
	}
	return n, err
}

// idleRead waits for the next request at most ReleaseIdleAfter; then it
// ends net/http's wait, marking the connection for release.
func (c *clientConn) idleRead(p []byte) (int, error) {
	releaseAt := time.Now().Add(c.s.opt.ReleaseIdleAfter)
	dl := c.deadline.Load()
	if dl != 0 && dl <= releaseAt.UnixNano() {
		return c.Conn.Read(p) // the idle timeout comes first
	}
	c.Conn.SetReadDeadline(releaseAt)
	n, err := c.Conn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.s.stopping.Load() {
		c.base = nil // it points into net/http's buffer, which must go back
		if c.head != nil {
			c.head.reset(true)
		}
		c.releasing.Store(true)
		return 0, errReleased
	}
	// Whatever came, the release deadline must not outlive this read: after
	// a short read net/http keeps reading the same request (its Peek wants
	// more than one byte) under the deadline it set, not ours.
	c.Conn.SetReadDeadline(deadlineTime(dl))
	if n > 0 {
		c.idle.Store(false)
	}
	return n, err
}

// looksHTTP2 reports whether a connection's first bytes may be the HTTP/2
// client preface.
func looksHTTP2(b []byte) bool {
	const preface = "PRI * HTTP/2.0"
	n := min(len(b), len(preface))
	return bytes.Equal(b[:n], []byte(preface[:n]))
}

func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.deadline.Store(deadlineNanos(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *clientConn) SetDeadline(t time.Time) error {
	c.deadline.Store(deadlineNanos(t))
	return c.Conn.SetDeadline(t)
}

func deadlineNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func deadlineTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Close closes the connection, or, when net/http lets go of a released
// one, hands the socket to a waiter.
func (c *clientConn) Close() error {
	if c.releasing.CompareAndSwap(true, false) && !c.s.stopping.Load() {
		c.held.Store(true)
		go c.s.hold(c)
		return nil
	}
	return c.closeNow()
}

// closeNow really closes the socket and gives the max_connections place back.
func (c *clientConn) closeNow() error {
	c.closeOnce.Do(func() { c.s.open.Add(-1) })
	return c.Conn.Close()
}

// CloseWrite half-closes (upgraded connections).
func (c *clientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// hold waits, without a buffer, until a released connection is readable,
// then gives it back to the http.Server; at its idle deadline, or when the
// client closes it, it closes and counts it.
func (s *Server) hold(c *clientConn) {
	<-c.handedBack
	c.Conn.SetReadDeadline(deadlineTime(c.deadline.Load()))
	err := waitReadable(c.Conn)
	if err == nil && !s.stopping.Load() {
		// Served as a new connection: net/http sets the deadlines it wants.
		c.SetReadDeadline(time.Time{})
		c.idle.Store(false)
		c.held.Store(false)
		if s.rl.resume(c) {
			return
		}
		c.held.Store(true)
	}
	c.closeNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ci, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.Closed.Add(1)
		why := ClosedIdleTimeout
		switch {
		case ci.drained || s.stopping.Load():
			why = ClosedDrain
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			why = ClosedClientClosed
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			why = ClosedError
		}
		s.ClosedBy[why].Add(1)
	}
}

// Held returns how many idle connections are held by waiters, released by
// net/http.
func (s *Server) Held() int { return s.Connections().Released }

// resumeListener hands released connections that became readable back to
// the http.Server: a second Serve runs on it beside the real listener's, so
// that accepting new connections takes no detour.
type resumeListener struct {
	addr      net.Addr
	resumed   chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newResumeListener(addr net.Addr) *resumeListener {
	return &resumeListener{addr: addr, resumed: make(chan net.Conn), done: make(chan struct{})}
}

func (l *resumeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.resumed:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// resume gives c back to the http.Server; false once the listener is closed.
func (l *resumeListener) resume(c net.Conn) bool {
	select {
	case l.resumed <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *resumeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *resumeListener) Addr() net.Addr { return l.addr }
