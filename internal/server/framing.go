package server

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/textproto"
	"sync"
)

// Requests framed two ways.
//
// An HTTP/1.1 request with both Content-Length and Transfer-Encoding is
// framed one way by a front proxy that trusts Content-Length and another by
// net/http, which follows Transfer-Encoding and deletes Content-Length
// before any handler runs (RFC 9112 §6.1 allows this only if the connection
// is closed after the response): the bytes one of them takes for the body,
// the other takes for the next request (a CL.TE desync). The server refuses
// such a request with 400 and closes the connection.
//
// Since net/http does not show the header as received, a plain-text
// connection keeps a copy of the bytes it read while net/http waited for a
// request head (headTap), and a chunked request's head is read again from
// it with net/textproto. Where the copy cannot be had — under TLS, where
// only ciphertext passes here, or when the head came in with an earlier
// request (pipelining) — a chunked request is served but its connection is
// closed after the response, which is what RFC 9112 requires of a server
// that accepts such a request.

// headTap holds the bytes read from a plain-text connection since it was
// last idle, up to max.
type headTap struct {
	mu   sync.Mutex
	b    []byte
	max  int
	full bool // more than max bytes came: the copy is not whole
}

func (t *headTap) add(p []byte) {
	t.mu.Lock()
	if len(t.b)+len(p) > t.max {
		t.full = true
	} else {
		t.b = append(t.b, p...)
	}
	t.mu.Unlock()
}

// reset starts the copy of the next request's head. drop also lets the
// buffer go (an idle connection released from net/http keeps nothing).
func (t *headTap) reset(drop bool) {
	t.mu.Lock()
	t.b, t.full = t.b[:0], false
	if drop {
		t.b = nil
	}
	t.mu.Unlock()
}

// contentLength reports whether the head of r, as received, held a
// Content-Length field; known is false when the copy is not r's head.
func (t *headTap) contentLength(r *http.Request) (has, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.full {
		return false, false
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(t.b)))
	line, err := tp.ReadLine()
	if err != nil || line != r.Method+" "+r.RequestURI+" "+r.Proto {
		return false, false
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return false, false
	}
	_, has = h["Content-Length"]
	return has, true
}

type connKey struct{}

// withConn is the http.Server's ConnContext: handlers can find the
// connection a request came on.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// framingGuard refuses HTTP/1.1 requests with both Content-Length and
// Transfer-Encoding, and closes after a chunked request whose head it
// cannot see.
type framingGuard struct {
	next http.Handler
}

func (g framingGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || len(r.TransferEncoding) == 0 {
		g.next.ServeHTTP(w, r)
		return
	}
	cc, _ := r.Context().Value(connKey{}).(*clientConn)
	has, known := false, false
	if cc != nil && cc.head != nil {
		has, known = cc.head.contentLength(r)
	}
	switch {
	case has:
		w.Header().Set("Connection", "close")
		http.Error(w, "400 Bad Request: both Content-Length and Transfer-Encoding", http.StatusBadRequest)
		return
	case !known:
		w.Header().Set("Connection", "close")
	}
	g.next.ServeHTTP(w, r)
}
