package bench

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// Floor serves the least a proxy built on net/http's server can do per
// request, as a measure of what net/http and the Go runtime cost on this
// machine before any gateway work: one fixed backend, a LIFO stack of idle
// keep-alive connections to it, the request written with Request.Write and
// the answer read with ReadResponse on the handler's goroutine (no
// per-connection read loop as in http.Transport), headers copied, the body
// streamed. No routing, metrics, header rewriting, retries, checks of a
// pooled connection before reuse, or timeouts (but net/http's
// ReadHeaderTimeout). It is a yardstick, not a
// proxy to run: a broken upstream connection fails the request.
//
// It runs as its own process (sluice-bench floor), pinned like every peer
// (servePeer: HTTP/1.1 and h2c on one listener, --pprof).
func Floor(args []string, stderr io.Writer) error {
	return servePeer("floor", args, stderr, func(upstream string) http.Handler {
		return &floor{upstream: upstream}
	})
}

type floor struct {
	upstream string
	idle     idleStack[*floorConn]
}

// floorConn is an upstream connection of a floor with its buffers.
type floorConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dialFloorConn(addr string) (floorConn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return floorConn{}, err
	}
	return floorConn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

func (f *floor) get() (*floorConn, error) {
	if c, ok := f.idle.pop(); ok {
		return c, nil
	}
	c, err := dialFloorConn(f.upstream)
	return &c, err
}

func (f *floor) put(c *floorConn) {
	if !f.idle.push(c) {
		c.nc.Close()
	}
}

// idleStack is the floors' pool of idle upstream connections: the most
// recently used one is reused first, and at most maxIdle are kept.
type idleStack[C any] struct {
	mu    sync.Mutex
	conns []C
}

const maxIdle = 1024

func (s *idleStack[C]) pop() (c C, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.conns); n > 0 {
		c, s.conns = s.conns[n-1], s.conns[:n-1]
		return c, true
	}
	return c, false
}

// push keeps c unless maxIdle are idle already; the caller closes it then.
func (s *idleStack[C]) push(c C) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == maxIdle {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := f.get()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", f.upstream
	out.Close = false
	out.Header.Del("Connection")
	if r.ContentLength == 0 {
		out.Body = nil
	}
	if err := out.Write(c.bw); err == nil {
		err = c.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(c.br, out)
	}
	if err != nil {
		c.nc.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	h.Del("Connection")
	h.Del("Keep-Alive")
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.nc.Close()
		return
	}
	f.put(c)
}
