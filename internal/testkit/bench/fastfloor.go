package bench

import (
	"io"
	"net/http"

	"github.com/valyala/fasthttp"
)

// FastFloor is Floor on the engine issue 16 moves HTTP/1.1 to: the least a
// proxy built on github.com/valyala/fasthttp's server can do per request,
// with fasthttp's codec used inside a pool of our own, as Sluice will use it
// (no fasthttp.HostClient). One fixed backend, the LIFO stack of idle
// keep-alive connections Floor has, the request written with
// Request.Write and the answer read with Response.Read on the handler's
// goroutine, headers passed through but Connection and Keep-Alive.
//
// HTTP/1.1 only (no h2c). Bodies stream both ways, within what fasthttp
// allows: the server reads the first 8 KiB of a request body with a
// Content-Length before the handler runs (a chunked one streams from its
// first byte); a response body streams to the client as it is read from the
// backend, chunked unless the backend sent a Content-Length. Response
// trailers are dropped; 1xx answers but 101 are consumed by fasthttp; 101
// (upgrades) is not supported. Like Floor, it is a yardstick: no timeouts,
// no checks of a pooled connection, and a broken upstream connection fails
// the request with 502 (one the backend closed with Connection: close is
// not reused).
//
// It runs as its own process (sluice-bench fastfloor) with Floor's flags.
func FastFloor(args []string, stderr io.Writer) error {
	listen, upstream, err := peerFlags("fastfloor", args, stderr)
	if err != nil {
		return err
	}
	f := &fastFloor{upstream: upstream}
	srv := &fasthttp.Server{
		Handler:                      f.serve,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true, // else a multipart body is read whole before the handler
		NoDefaultContentType:         true,
	}
	return srv.ListenAndServe(listen)
}

type fastFloor struct {
	upstream string
	idle     idleStack[*fastConn]
}

// fastConn is an upstream connection with the response it reads into, reused
// with it.
type fastConn struct {
	floorConn
	resp fasthttp.Response
	body upstreamBody
}

func (f *fastFloor) get() (*fastConn, error) {
	if c, ok := f.idle.pop(); ok {
		return c, nil
	}
	fc, err := dialFloorConn(f.upstream)
	if err != nil {
		return nil, err
	}
	return &fastConn{floorConn: fc}, nil
}

// release pools c if reuse, else closes it.
func (f *fastFloor) release(c *fastConn, reuse bool) {
	if !reuse || !f.idle.push(c) {
		c.nc.Close()
	}
}

func (f *fastFloor) serve(ctx *fasthttp.RequestCtx) {
	c, err := f.get()
	if err != nil {
		ctx.Error(err.Error(), http.StatusBadGateway)
		return
	}
	req := &ctx.Request
	// The client's Connection: close is for its own connection, which the
	// server has noted before calling the handler; not for the upstream one.
	req.Header.ResetConnectionClose()
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost(f.upstream)
	}
	err = req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err == nil {
		c.resp.Reset()
		c.resp.StreamBody = true
		c.resp.SkipBody = ctx.IsHead()
		err = c.resp.Read(c.br)
	}
	if err != nil {
		c.nc.Close()
		ctx.Error(err.Error(), http.StatusBadGateway)
		return
	}
	c.resp.Header.CopyTo(&ctx.Response.Header)
	ctx.Response.Header.ResetConnectionClose()
	ctx.Response.Header.Del("Keep-Alive")
	if c.resp.BodyStream() == nil { // HEAD, 204, 304
		f.release(c, !c.resp.ConnectionClose())
		return
	}
	c.body = upstreamBody{f: f, c: c}
	ctx.Response.SetBodyStream(&c.body, c.resp.Header.ContentLength())
}

// upstreamBody streams a response body off its connection. The server closes
// it when it has written the response (or given up on it); Close pools the
// connection if the body was read to its end and the backend keeps the
// connection alive.
type upstreamBody struct {
	f   *fastFloor
	c   *fastConn
	eof bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.c.resp.BodyStream().Read(p)
	b.eof = err == io.EOF
	return n, err
}

func (b *upstreamBody) Close() error {
	c := b.c
	// Content-Length -2: the body ends when the backend closes.
	reuse := b.eof && !c.resp.ConnectionClose() && c.resp.Header.ContentLength() != -2
	if err := c.resp.CloseBodyStream(); err != nil {
		reuse = false
	}
	b.f.release(c, reuse)
	return nil
}
