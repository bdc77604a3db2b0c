package pool

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Keep-alive learning: how long a connection may stay idle, and how many
// requests it may carry.
//
// A backend closes an idle connection when its own keep-alive timeout T ends
// (Node 5 s, gunicorn 2 s, Tomcat 20 s), usually without saying so. A request
// sent on that connection shortly before the FIN arrives is lost in flight:
// the backend never reads it, the proxy sees a reset, and for a POST no
// proxy can know whether it ran. Sluice avoids the race rather than guessing
// afterwards: it never reuses a connection whose idle age comes near what the
// endpoint is known to tolerate.
//
// What an endpoint tolerates is learned, per endpoint, from three sources:
//   - a Keep-Alive: timeout=N response header (trusted: window N-1s; N<=1 means do not pool);
//   - closes observed on idle connections (the sweeper peeks idle connections
//     every sweepInterval, so the age of a close is known to within that);
//   - ages at which connections were seen alive (peeked or reused successfully).
//
// Until anything is known, reuse is limited to unprovenWindow of idle time;
// older idle connections are not leased but kept, as observers, up to
// MaxIdleTime: their survival (or their close) is what teaches the window,
// without ever risking a request on them.
//
// A backend may also close each connection right after its Nth response
// without saying so (uWSGI and gunicorn max-requests, some load balancers):
// the FIN follows the response by a few ms, and a request sent in between
// is lost. A connection that ends that way (hot: before it was ever seen
// alive while idle, and before hotClose) teaches its count of responses.
// When the next hot end, on a connection opened after the previous one,
// comes after the same count N, N is the endpoint's limit: connections
// retire after N−1 responses, and a request lost in that close is known
// unread (the backend discards what follows its Nth response). A hot end
// that does not fit marks the pool stale instead, as a restart would, and
// forgets N. A Keep-Alive: max=N header is honoured as told.
const (
	// unprovenWindow is the idle age below which any connection is reused
	// before the endpoint's behaviour is known: below every common backend
	// keep-alive timeout (gunicorn's 2 s is the shortest default in the field).
	unprovenWindow = 500 * time.Millisecond
	// hintMargin is subtracted from an advertised Keep-Alive timeout.
	hintMargin = time.Second
	// maxObservers bounds the idle connections kept beyond the window per endpoint.
	maxObservers = 2
	// hotClose: a connection the peer closed before it had been idle this
	// long, and before the sweeper saw it alive, was closed right after its
	// last response rather than for being idle.
	hotClose = probeAfter + 2*sweepInterval
)

// safeBelow returns an idle age safely below an observed one: the margin
// covers a round trip (the request must arrive before the backend's timer
// ends) and the sweeper's resolution.
func safeBelow(d time.Duration) time.Duration {
	m := d / 5
	if m < 100*time.Millisecond {
		m = 100 * time.Millisecond
	}
	return d - m
}

// keepAlive is what one endpoint is known to tolerate. Guarded by Pool.mu.
type keepAlive struct {
	hint     time.Duration // advertised timeout; 0 = none seen
	noPool   bool          // advertised timeout <= 1s: close after each response
	closedAt time.Duration // lower bound of the idle age at which the peer closed; 0 = unknown
	aliveAt  time.Duration // largest idle age at which a connection was seen alive

	endedAfter int           // responses carried by the last connection that ended hot; 0 = none
	maxResp    int           // learned: connections end after this many responses; 0 = unknown
	changed    chan struct{} // closed when endedAfter or maxResp changes (see watch)
}

// watch returns a channel closed at the next change of what is known of
// the endpoint's response limit.
func (k *keepAlive) watch() <-chan struct{} {
	if k.changed == nil {
		k.changed = make(chan struct{})
	}
	return k.changed
}

func (k *keepAlive) setEnds(endedAfter, maxResp int) {
	k.endedAfter, k.maxResp = endedAfter, maxResp
	if k.changed != nil {
		close(k.changed)
		k.changed = nil
	}
}

// spent reports whether a connection that carried n responses must retire
// before the backend's learned limit: after N−1 of N.
func (k *keepAlive) spent(n int) bool { return k.maxResp > 0 && n >= k.maxResp-1 }

// sawEnd records a connection the peer ended right after its nth response
// (a hot end), opened after the previous hot end. It reports whether the
// end fits the endpoint's limit; one that does not fit forgets the limit
// and starts a new guess.
func (k *keepAlive) sawEnd(n int) (fits bool) {
	if n >= 2 && n == k.endedAfter {
		k.setEnds(n, n)
		return true
	}
	k.setEnds(n, 0)
	return false
}

// window is the largest idle age at which a connection may be reused.
func (k *keepAlive) window(maxIdle time.Duration) time.Duration {
	if k.noPool {
		return 0
	}
	w := maxIdle
	known := false
	if k.hint > 0 {
		w, known = min(w, k.hint-hintMargin), true
	}
	if k.closedAt > 0 {
		w, known = min(w, safeBelow(k.closedAt)), true
	}
	if !known {
		w = min(w, max(unprovenWindow, safeBelow(k.aliveAt)))
	}
	return w
}

// sawAlive records a connection alive at idle age d.
func (k *keepAlive) sawAlive(d time.Duration) {
	if d > k.aliveAt {
		k.aliveAt = d
	}
	// Clearly past the learned close age: the backend changed (a new version
	// with a longer timeout). Forget the old lesson.
	if k.closedAt > 0 && d > k.closedAt+max(250*time.Millisecond, k.closedAt/4) {
		k.closedAt = 0
	}
}

// sawClosed records that the peer closed a connection idle for between lo and hi.
// Only a tight bracket teaches anything; a loose one (a connection nobody
// watched) is ignored.
func (k *keepAlive) sawClosed(lo, hi time.Duration) bool {
	if lo <= 0 || hi-lo > 4*sweepInterval {
		return false
	}
	if k.closedAt == 0 || lo < k.closedAt {
		k.closedAt = lo
	}
	return true
}

// sawHeader applies a response's Keep-Alive header. It returns the number of
// further requests the connection may carry (-1 = no limit given).
func (k *keepAlive) sawHeader(h http.Header) (remaining int) {
	remaining = -1
	v := h.Get("Keep-Alive")
	if v == "" {
		return
	}
	timeout, maxReq := parseKeepAlive(v)
	if timeout >= 0 {
		k.hint = time.Duration(timeout) * time.Second
		k.noPool = timeout <= 1
	}
	if maxReq >= 0 {
		// max=N allows N more requests; keep one in hand against off-by-one servers.
		remaining = maxReq - 1
	}
	return
}

// parseKeepAlive parses "timeout=5, max=100"; absent parameters are -1.
func parseKeepAlive(v string) (timeout, maxReq int) {
	timeout, maxReq = -1, -1
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ",")
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
		if err != nil || n < 0 {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "timeout":
			timeout = n
		case "max":
			maxReq = n
		}
	}
	return
}

// sawResponse learns from a response on c: the connection was alive at its
// idle age, its Keep-Alive header, and how many responses it carried.
func (p *Pool) sawResponse(c *conn, reused bool, idleAge time.Duration, h http.Header) {
	p.mu.Lock()
	if reused {
		p.ka.sawAlive(idleAge)
	}
	if c.remaining > 0 {
		c.remaining--
	}
	if r := p.ka.sawHeader(h); r >= 0 && (c.remaining < 0 || r < c.remaining) {
		c.remaining = r
	}
	if p.ka.endedAfter > 0 && c.requests > p.ka.endedAfter && c.gen == p.gen {
		p.ka.setEnds(0, 0) // it carried more: there is no such limit
	}
	p.mu.Unlock()
}

// An end is how the peer closed a connection, as learning sees it.
type end uint8

const (
	idleEnd  end = iota // while idle for a while: a keep-alive timeout
	fitEnd              // hot, after as many responses as the previous hot end: the endpoint's limit
	newEnd              // hot, after another count: a new guess, or a restart
	staleEnd            // hot, on a connection already marked stale: nothing new
)

// sawEndLocked learns from a connection the peer ended after n responses,
// found idle for age. p.mu is held.
func (p *Pool) sawEndLocked(c *conn, n int, age time.Duration) end {
	switch {
	case c.lastAlive > 0 || age >= hotClose:
		p.ka.sawClosed(c.lastAlive, age)
		return idleEnd
	case c.gen != p.gen:
		return staleEnd
	case p.ka.sawEnd(n):
		return fitEnd
	}
	return newEnd
}

// endedIdle handles an idle connection that its lease found closed.
func (p *Pool) endedIdle(c *conn, age time.Duration) {
	p.mu.Lock()
	e := p.sawEndLocked(c, c.requests, age)
	p.mu.Unlock()
	p.drop(c, ReasonPeerClosed)
	if e == newEnd {
		p.invalidate()
	}
}

// endedEarly handles a reused connection that ended with no response to
// its request. A request sent whole into the close of an endpoint's
// response limit is known unread. A hot end that does not fit marks the
// pool stale (a restart ends every connection); since it may also be the
// first sign of such a limit, an error with a plain FIN then names the
// count to confirm (see awaitLimit). So does the end of a connection already
// stale, which teaches nothing by itself.
func (p *Pool) endedEarly(c *conn, age time.Duration, e *Error) {
	n := c.requests - 1
	p.mu.Lock()
	kind := p.sawEndLocked(c, n, age)
	p.mu.Unlock()
	switch kind {
	case fitEnd:
		e.Unread = e.Stage == StageAwait
		return
	case idleEnd, newEnd:
		p.invalidate()
	}
	if kind != idleEnd && e.fin && n >= 2 {
		e.confirm = n
	}
}

// limitWait bounds how long a failed request waits for a second connection
// to end the way its own did (awaitLimit).
const limitWait = time.Second

// awaitLimit waits, up to limitWait, the deadline, or the end of ctx, for
// the endpoint's next hot end to say whether its connections end after n
// responses. It reports true if they do: the request, sent whole into such
// a close, was discarded unread.
func (p *Pool) awaitLimit(ctx context.Context, n int, deadline time.Time) bool {
	wait := limitWait
	if !deadline.IsZero() {
		wait = min(wait, time.Until(deadline))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		p.mu.Lock()
		known, open := p.ka.maxResp == n, p.ka.endedAfter == n
		ch := p.ka.watch()
		p.mu.Unlock()
		if known || !open {
			return known
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
