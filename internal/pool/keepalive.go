package pool

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Keep-alive learning.
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
const (
	// unprovenWindow is the idle age below which any connection is reused
	// before the endpoint's behaviour is known: below every common backend
	// keep-alive timeout (gunicorn's 2 s is the shortest default in the field).
	unprovenWindow = 500 * time.Millisecond
	// hintMargin is subtracted from an advertised Keep-Alive timeout.
	hintMargin = time.Second
	// maxObservers bounds the idle connections kept beyond the window per endpoint.
	maxObservers = 2
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
