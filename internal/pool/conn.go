package pool

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
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
	// noWrite is set when the request may not write any more (aborted, or
	// answered before it was all sent), so that no write deadline undoes it.
	noWrite atomic.Bool

	gen       uint64    // pool generation at dial; older generations are stale
	created   time.Time // dial time
	expires   time.Time // created + jittered max lifetime; zero = never
	idleSince time.Time // when it last went idle
	lastAlive time.Duration
	requests  int
	wroteAt   time.Time     // when the current request's write began
	wait      time.Duration // the current request's response timeout; 0 = none
	remaining int           // requests still allowed by the server (Keep-Alive max); -1 = no limit
	reusable  bool
}

// countingWriter writes to the connection, counting what the kernel
// accepted. With a response timeout, each write must make progress within it.
type countingWriter struct {
	c      *conn
	n      int64
	writes int
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.wait > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.wait))
		if c.noWrite.Load() {
			c.nc.SetWriteDeadline(aLongTimeAgo)
		}
	}
	n, err := c.nc.Write(p)
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
// wait, if not zero, bounds the wait for the response from the end of the
// request's write. A request with a body is written on its own goroutine
// (upload) while the response is read, so that an early answer is seen at
// once; when roundTrip returns, that goroutine has ended.
func (c *conn) roundTrip(req *http.Request, reused bool, idleAge, wait time.Duration) (*http.Response, *Error) {
	c.cw.n, c.cw.err, c.cw.writes = 0, nil, 0
	c.cr.n = 0
	c.requests++
	c.wait = wait
	c.reusable = true
	c.wroteAt = time.Now()
	if req.Body == nil || req.Body == http.NoBody {
		if err := c.write(req); err != nil {
			if c.cw.err == nil {
				return nil, &Error{Stage: StageClientBody, Reused: reused, Written: c.cw.n, Err: err}
			}
			return nil, &Error{Stage: StageWrite, Reused: reused, IdleAge: idleAge, Written: c.cw.n, Peer: isPeerClose(err), Err: err}
		}
		c.awaitResponse()
		return c.readResponse(req, nil, reused, idleAge)
	}
	return c.readResponse(req, c.upload(req), reused, idleAge)
}

func (c *conn) write(req *http.Request) error {
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	return err
}

// awaitResponse starts the response timeout: the request is sent (or can
// be sent no further).
func (c *conn) awaitResponse() {
	if c.wait > 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.wait))
	}
}

// readResponse reads the response headers, skipping interim responses (100
// Continue, 103 Early Hints; 101 Switching Protocols is final). A final
// response that comes before the request is all sent ends the upload, and
// the connection is not reused.
func (c *conn) readResponse(req *http.Request, u *upload, reused bool, idleAge time.Duration) (*http.Response, *Error) {
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if u != nil {
				u.stop()
			}
			return nil, c.failed(err, u, reused, idleAge)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		if u != nil && !u.stop() {
			c.reusable = false // answered early: the rest of the request was not sent
		}
		return resp, nil
	}
}

// failed says how far a request got whose response could not be read.
func (c *conn) failed(err error, u *upload, reused bool, idleAge time.Duration) *Error {
	e := &Error{Stage: StageAwait, Reused: reused, IdleAge: idleAge, Written: c.cw.n, Peer: isPeerClose(err), Err: err}
	switch {
	case u != nil && u.clientFailed():
		return &Error{Stage: StageClientBody, Reused: reused, Written: c.cw.n, Err: u.err}
	case c.cr.n > 0:
		e.Stage = StageHeaders
	case u != nil && u.err != nil:
		e.Stage = StageWrite // not all of the request was sent
		if c.cw.err != nil && !u.stopped.Load() {
			e.Err, e.Peer = c.cw.err, e.Peer || isPeerClose(c.cw.err)
		}
	default:
		e.fin = errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) // ReadResponse reports a FIN as ErrUnexpectedEOF
	}
	return e
}

// errAnswered ends an upload whose response came first.
var errAnswered = errors.New("pool: the backend answered before the request body was sent")

// upload writes a request with a body on its own goroutine. It stands in
// for the body (unless that is in memory), so that stop can end the write
// between two reads of the client's body.
type upload struct {
	c       *conn
	body    io.ReadCloser
	stopped atomic.Bool
	done    chan struct{}
	err     error // the write's error, once done is closed
}

func (c *conn) upload(req *http.Request) *upload {
	u := &upload{c: c, body: req.Body, done: make(chan struct{})}
	r := req
	if !inMemory(req.Body) {
		r = new(http.Request)
		*r = *req
		r.Body = u
	}
	go u.run(r)
	return u
}

var nopCloserTypes = [...]reflect.Type{
	reflect.TypeOf(io.NopCloser(nil)),
	reflect.TypeOf(io.NopCloser(struct {
		io.Reader
		io.WriterTo
	}{})),
}

// inMemory reports whether body is one of the in-memory readers that
// (*http.Request).Write sends in the same write as the headers (net/http's
// isKnownInMemoryReader). Such a body is not wrapped, so that it still is:
// a request that left in one write can be proven unread (proveUnread).
// Reading it never blocks, so the write deadline alone stops its upload.
func inMemory(body io.Reader) bool {
	switch body.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	}
	if t := reflect.TypeOf(body); t == nopCloserTypes[0] || t == nopCloserTypes[1] {
		return inMemory(reflect.ValueOf(body).Field(0).Interface().(io.Reader))
	}
	return false
}

func (u *upload) run(r *http.Request) {
	c := u.c
	u.err = c.write(r)
	if u.clientFailed() {
		c.nc.SetReadDeadline(aLongTimeAgo) // no answer is awaited for a request the client could not send
	} else {
		c.awaitResponse()
	}
	close(u.done)
}

func (u *upload) Read(p []byte) (int, error) {
	if u.stopped.Load() {
		return 0, errAnswered
	}
	return u.body.Read(p)
}

// Close closes the client's body, unless the upload was stopped by an early
// answer: what is left of it is then the caller's to read or discard.
func (u *upload) Close() error {
	if u.stopped.Load() {
		return nil
	}
	return u.body.Close()
}

// clientFailed reports, once done, that reading the client's body failed.
func (u *upload) clientFailed() bool {
	return u.err != nil && u.c.cw.err == nil && !u.stopped.Load()
}

// stop waits for the write to end, ending it first if it has not: no more
// of the body is read, and a write in progress is cut. It reports whether
// the request was sent whole.
func (u *upload) stop() (whole bool) {
	select {
	case <-u.done:
	default:
		u.stopped.Store(true)
		u.c.noWrite.Store(true)
		u.c.nc.SetWriteDeadline(aLongTimeAgo)
		<-u.done
		if u.err == nil { // it ended by itself after all
			u.c.nc.SetWriteDeadline(time.Time{})
			u.c.noWrite.Store(false)
		}
	}
	return u.err == nil
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
