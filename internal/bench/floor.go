package bench

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Floor serves the least a proxy built on net/http's server can do per
// request, as a measure of what net/http and the Go runtime cost on this
// machine before any gateway work: one fixed backend, a LIFO stack of
// keep-alive connections to it, the request written with Request.Write and
// the answer read with ReadResponse on the handler's goroutine (no
// per-connection read loop as in http.Transport), headers copied, the body
// streamed. No routing, timeouts, metrics, header rewriting, retries, or
// checks of a pooled connection before reuse. It is a yardstick, not a
// proxy to run: a broken upstream connection fails the request.
//
// It runs as its own process (sluice-bench floor), pinned like every peer,
// and serves HTTP/1.1 and h2c with prior knowledge on one listener; with
// --pprof ADDR, CPU profiles on ADDR/debug/pprof/profile.
func Floor(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "backend host:port")
	pprofAddr := fs.String("pprof", "", "address serving /debug/pprof (off when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("floor: --upstream is required")
	}
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.Serve(ln, mux)
	}
	f := &floor{upstream: *upstream, idle: make(chan *floorConn, 1024)}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: *listen, Handler: f, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
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
