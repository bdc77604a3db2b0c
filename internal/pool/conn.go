package pool

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// conn is one HTTP/1.1 connection to an endpoint. It carries one request at
// a time; between requests it sits in its pool's idle list and no goroutine
// is attached to it. The wire format is the standard library's
// ((*http.Request).Write and http.ReadResponse); conn only keeps count of
// what crossed the socket, so a failure can say how far it got.
type conn struct {
	pool  *Pool
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	cr    countingReader
	cw    countingWriter
	probe *prober
	abort func() // unblocks any read or write in progress (made once, run by context.AfterFunc)

	gen       uint64    // pool generation at dial; older generations are stale
	created   time.Time // dial time
	expires   time.Time // created + jittered max lifetime; zero = never
	idleSince time.Time // when it last went idle
	lastAlive time.Duration
	requests  int
	wroteAt   time.Time // when the current request's write began
	remaining int       // requests still allowed by the server (Keep-Alive max); -1 = no limit
	reusable  bool
}

type countingWriter struct {
	w      io.Writer
	n      int64
	writes int
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.writes++
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// roundTrip writes req and reads the response headers. On success the caller
// owns the response body, which gives the connection back when it is done.
func (c *conn) roundTrip(req *http.Request, reused bool, idleAge time.Duration) (*http.Response, *Error) {
	c.cw.n, c.cw.err, c.cw.writes = 0, nil, 0
	c.cr.n = 0
	c.requests++
	c.wroteAt = time.Now()
	fail := func(stage Stage, err error) *Error {
		return &Error{Stage: stage, Reused: reused, IdleAge: idleAge, Written: c.cw.n, Peer: isPeerClose(err), Err: err}
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		if c.cw.err == nil {
			// The socket took everything it was given: the client's body failed.
			return nil, &Error{Stage: StageClientBody, Reused: reused, Written: c.cw.n, Err: err}
		}
		return nil, fail(StageWrite, err)
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.cr.n == 0 {
				e := fail(StageAwait, err)
				e.Unread = (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && c.proveUnread() // ReadResponse reports a FIN as ErrUnexpectedEOF
				return nil, e
			}
			return nil, fail(StageHeaders, err)
		}
		// Interim responses (100 Continue, 103 Early Hints) are skipped;
		// 101 Switching Protocols is final.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
}

// proveUnread is called after a connection ended (FIN) with no response
// byte. It waits a bounded time for an RST to follow. A FIN then an RST means
// the backend closed the socket first and our bytes arrived at a closed
// socket, which answers with RST: the application never read the request.
// (A backend that read the request and then closed, or crashed, sends a FIN
// and nothing more, since no further bytes of ours arrive.) The proof needs
// the whole request to have left in one write, so that no later part could
// arrive after the backend had read an earlier one.
//
// The RST comes back one round trip after the write at the latest; the wait
// is bounded by rttBound, and only a request that already failed waits.
func (c *conn) proveUnread() bool {
	if c.cw.writes != 1 {
		return false
	}
	bound := c.pool.rttBound()
	for end := c.wroteAt.Add(bound); ; {
		if c.probe.resetSeen() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// body is a response body that returns its connection to the pool at EOF,
// and closes it if abandoned early or broken.
type body struct {
	c    *conn
	rc   io.ReadCloser
	stop func() bool // stops the context watcher; false if it already fired
	done atomic.Bool
	// owner is set while the response is being read; cleared when the
	// connection goes back, so a late Read cannot touch the next response.
}

func (b *body) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
		return n, io.EOF
	}
	if err != nil {
		b.finish(false)
		return n, &Error{Stage: StageBody, Reused: b.c.requests > 1, Peer: isPeerClose(err), Err: err}
	}
	return n, nil
}

func (b *body) Close() error {
	b.finish(false)
	return nil
}

func (b *body) finish(complete bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	watcherQuiet := b.stop == nil || b.stop()
	if complete && watcherQuiet {
		b.c.pool.put(b.c)
		return
	}
	reason := ReasonError
	if !complete {
		reason = ReasonAbandoned
	}
	b.c.pool.discard(b.c, reason)
}

// upgraded is the body of a 101 Switching Protocols response: the raw
// connection, read through the buffered reader. It leaves the pool for good.
type upgraded struct {
	c    *conn
	done atomic.Bool
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error {
	if u.done.CompareAndSwap(false, true) {
		u.c.pool.discard(u.c, ReasonUpgraded)
	}
	return nil
}

// CloseWrite half-closes the upstream side when the transport supports it.
func (u *upgraded) CloseWrite() error {
	if cw, ok := u.c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
