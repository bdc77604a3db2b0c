package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/route"
)

// BodyLimits bound how slowly a client may send a request body, so that a
// client trickling its body (slowloris) cannot hold a connection, a
// goroutine and a slot of a route's concurrency limit for ever. A body read
// that breaks them fails, and the request is answered 408 with reason
// request_body_timeout.
type BodyLimits struct {
	// Timeout is the longest wait for the next bytes of the body (nginx's
	// client_body_timeout). 0 = none.
	Timeout time.Duration
	// MinRate is the slowest average rate, in bytes per second, of the body
	// so far, measured from MinRateGrace after the request began. 0 = none.
	MinRate int64
	// MinRateGrace is how long a body may be slower than MinRate at its start.
	MinRateGrace time.Duration
}

// BodyTimeout is the reason of a request whose body came too slowly.
const BodyTimeout = "request_body_timeout"

// LimitBody makes the reads of r's body obey l, until the route the request
// matches sets limits of its own. w must be r's ResponseWriter: the limits
// are read deadlines on the client connection (HTTP/1.1) or stream (HTTP/2).
func LimitBody(w http.ResponseWriter, r *http.Request, l BodyLimits) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	b := &slowBody{rc: r.Body, ctl: http.NewResponseController(w), start: time.Now(), listener: l}
	b.limits.Store(&b.listener)
	r.Body = b
}

// slowBody is a request body read under BodyLimits.
type slowBody struct {
	rc     io.ReadCloser
	ctl    *http.ResponseController
	start  time.Time
	limits atomic.Pointer[BodyLimits] // the listener's, or the route's (routeBody)
	// listener holds the listener's limits, so that they need no allocation
	// of their own.
	listener BodyLimits
	n        atomic.Int64 // bytes read; the body may be read on another goroutine
	// timedOut: a read failed for breaking the limits.
	timedOut atomic.Bool
	armed    atomic.Bool // a deadline was set

	// mu orders deadline changes with the end of the handler: an upstream
	// HTTP/2 writer may still read the body after the handler returned,
	// when the connection's deadlines are no longer the body's to set
	// (net/http forbids a ResponseController after the handler).
	mu      sync.Mutex
	settled bool
}

// setReadDeadline sets the client read deadline unless the handler is done.
func (b *slowBody) setReadDeadline(t time.Time) {
	b.mu.Lock()
	if !b.settled {
		b.ctl.SetReadDeadline(t)
	}
	b.mu.Unlock()
}

// settle is called as the handler returns: the body stops touching the
// connection.
func (b *slowBody) settle() {
	b.mu.Lock()
	b.settled = true
	b.mu.Unlock()
}

var errBodyTimeout = errors.New("request body too slow")

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.arm() {
		b.timedOut.Store(true)
		return 0, errBodyTimeout
	}
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	switch {
	case err == io.EOF && b.armed.Load():
		// net/http reads on after the body ended, to see the client go: no
		// deadline of the body's must end that read.
		b.setReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		err = errBodyTimeout
	}
	return n, err
}

// arm sets the deadline of the next read; false when the body is already
// behind its minimum rate.
func (b *slowBody) arm() bool {
	l := b.limits.Load()
	now := time.Now()
	var dl time.Time
	if l.Timeout > 0 {
		dl = now.Add(l.Timeout)
	}
	if l.MinRate > 0 {
		// The time by which the bytes read so far stop being enough.
		due := b.start.Add(max(l.MinRateGrace, time.Duration(float64(b.n.Load())/float64(l.MinRate)*float64(time.Second))))
		if !due.After(now) {
			return false
		}
		if dl.IsZero() || due.Before(dl) {
			dl = due
		}
	}
	if dl.IsZero() && !b.armed.Load() {
		return true
	}
	b.armed.Store(true)
	b.setReadDeadline(dl)
	return true
}

func (b *slowBody) Close() error { return b.rc.Close() }

// routeBody applies a route's own limits to r's body, when it sets them.
func routeBody(r *http.Request, o *route.BodyLimits) {
	b, ok := r.Body.(*slowBody)
	if !ok || o == nil {
		return
	}
	l := *b.limits.Load()
	if o.Timeout != nil {
		l.Timeout = *o.Timeout
	}
	if o.MinRate != nil {
		l.MinRate = *o.MinRate
	}
	b.limits.Store(&l)
}

// bodyTimedOut turns err into the 408 of a body that came too slowly, when
// it did.
func bodyTimedOut(r *http.Request, err error) error {
	if b, ok := r.Body.(*slowBody); ok && b.timedOut.Load() {
		return &exchange.Error{Status: http.StatusRequestTimeout, Reason: BodyTimeout, Err: err}
	}
	return err
}
