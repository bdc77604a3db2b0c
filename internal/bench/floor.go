package bench

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Floor serves the least a proxy built on net/http's server can do per
// request, as a measure of what net/http and the Go runtime cost on this
// machine before any gateway work: one fixed backend, a queue of idle
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
		return &floor{upstream: upstream, idle: make(chan *floorConn, 1024)}
	})
}

type floor struct {
	upstream string
	idle     chan *floorConn
}

type floorConn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (f *floor) get() (*floorConn, error) {
	select {
	case c := <-f.idle:
		return c, nil
	default:
	}
	nc, err := net.Dial("tcp", f.upstream)
	if err != nil {
		return nil, err
	}
	return &floorConn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

func (f *floor) put(c *floorConn) {
	select {
	case f.idle <- c:
	default:
		c.nc.Close()
	}
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
