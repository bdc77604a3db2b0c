// Package server runs the proxy's listeners and carries out the drain
// protocol: a gateway that is asked to stop first stops being ready, keeps
// serving while load balancers notice, then asks every client to go, stops
// accepting, lets in-flight requests finish, and only then exits.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// KeepAlive is the TCP keepalive of accepted sockets.
	KeepAlive net.KeepAliveConfig
	// ReusePort sets SO_REUSEPORT so a new process can bind the same port
	// while this one drains.
	ReusePort bool
	// MaxConnections caps open client connections; further ones are closed
	// as soon as they are accepted (and counted in Refused). 0 = no cap.
	MaxConnections int
	// TLS, when set, terminates TLS (HTTP/2 and HTTP/1.1 by ALPN).
	TLS *tls.Config
	// H2C serves cleartext HTTP/2 with prior knowledge beside HTTP/1.1.
	H2C bool
	// ReleaseIdleAfter: a plain-text HTTP/1.1 keep-alive connection idle
	// this long gives net/http's goroutine and buffers back and is held by
	// a small waiter until the client sends again (release.go). 0 = never;
	// not under TLS.
	ReleaseIdleAfter time.Duration
}

// Server is one proxy listener and its http.Server.
type Server struct {
	opt Options
	srv *http.Server
	ln  net.Listener
	// rl gives released connections back; nil unless they are released.
	rl  *resumeListener
	log *slog.Logger
	// stopping: Shutdown began; no connection is released any more.
	stopping atomic.Bool
	// h2c serves "Upgrade: h2c"; nil unless H2C on a plain listener.
	h2c *h2cUpgrader

	mu    sync.Mutex
	conns map[net.Conn]*connInfo

	Accepted, Closed, Refused atomic.Uint64
	// ClosedBy counts closed connections by CloseReason.
	ClosedBy [numCloseReasons]atomic.Uint64
	// TLSHandshakeErrors counts TLS handshakes that failed.
	TLSHandshakeErrors atomic.Uint64
	open               atomic.Int64
}

// CloseReason is why a client connection ended, as far as the server can tell.
type CloseReason int

const (
	// ClosedIdleTimeout: the gateway closed it after idle_timeout between
	// requests (HTTP/1.1's read deadline, HTTP/2's idle timer).
	ClosedIdleTimeout CloseReason = iota
	// ClosedClientClosed: the client closed or reset it (between requests,
	// before its first, or while a request was being served).
	ClosedClientClosed
	// ClosedAfterRequest: ended cleanly after a response, as either side
	// asked (Connection: close).
	ClosedAfterRequest
	// ClosedUpgraded: taken over by an upgrade (WebSocket, h2c), then closed.
	ClosedUpgraded
	// ClosedDrain: closed by the drain or by Shutdown.
	ClosedDrain
	// ClosedMaxConnections: refused at once because max_connections were open.
	ClosedMaxConnections
	// ClosedError: a read or write failed, the request headers did not
	// arrive within read_header_timeout (slowloris), or the TLS handshake failed.
	ClosedError
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{"idle_timeout", "client_closed", "after_request", "upgraded", "drain",
	"max_connections", "error"}

func (r CloseReason) String() string { return closeReasonNames[r] }

// CloseReasons lists every CloseReason.
func CloseReasons() []CloseReason {
	out := make([]CloseReason, numCloseReasons)
	for i := range out {
		out[i] = CloseReason(i)
	}
	return out
}

type connInfo struct {
	state     http.ConnState
	idleSince time.Time
	served    bool   // a request was read
	drained   bool   // the drain closed it
	held      bool   // released by net/http, held by a waiter (release.go)
	proto     string // "http/1.1", "h2" or "h2c" once known; "" before the first request
}

// Listen binds the listener; Serve runs it.
func Listen(opt Options, h http.Handler, log *slog.Logger) (*Server, error) {
	lc := listenConfig(opt)
	ln, err := lc.Listen(context.Background(), "tcp", opt.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, log: log, conns: map[net.Conn]*connInfo{}}
	if opt.TLS != nil || !releaseSupported {
		s.opt.ReleaseIdleAfter = 0
	}
	s.ln = &limitListener{Listener: ln, s: s}
	if s.opt.ReleaseIdleAfter > 0 {
		s.rl = newResumeListener(ln.Addr())
	}
	if opt.H2C && opt.TLS == nil {
		if s.h2c, err = newH2CUpgrader(h); err != nil {
			ln.Close()
			return nil, err
		}
		h = s.h2c
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(opt.TLS != nil)
	protocols.SetUnencryptedHTTP2(opt.H2C && opt.TLS == nil)
	s.srv = &http.Server{
		Protocols:         &protocols,
		TLSConfig:         opt.TLS,
		Handler:           framingGuard{next: h},
		ConnContext:       withConn,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		MaxHeaderBytes:    opt.MaxHeaderBytes,
		ConnState:         s.connState,
		ErrorLog:          stdlog.New(&errorLog{s: s, log: log}, "", 0),
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown.
func (s *Server) Serve() error {
	var err error
	if s.opt.TLS != nil {
		err = s.srv.ServeTLS(s.ln, "", "") // certificates come from TLSConfig
	} else {
		if s.rl != nil {
			go s.srv.Serve(s.rl) // ends with Shutdown, like the other
		}
		err = s.srv.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	cc, _ := c.(*clientConn)
	if tc, ok := c.(*tls.Conn); ok {
		cc, _ = tc.NetConn().(*clientConn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		if ci, ok := s.conns[c]; ok { // a released connection given back
			ci.state, ci.held = st, false
			return
		}
		s.Accepted.Add(1)
		s.conns[c] = &connInfo{state: st}
	case http.StateHijacked, http.StateClosed:
		ci, ok := s.conns[c]
		if !ok {
			return
		}
		if st == http.StateClosed && cc != nil && cc.held.Load() {
			ci.held = true // still open and idle: a waiter holds it
			cc.handedBack <- struct{}{}
			return
		}
		if cc != nil {
			cc.noRelease.Store(true)
		}
		delete(s.conns, c)
		s.Closed.Add(1)
		s.ClosedBy[s.closeReason(st, ci, cc)].Add(1)
	default:
		if ci := s.conns[c]; ci != nil {
			ci.state = st
			if cc != nil {
				cc.active.Store(st == http.StateActive)
			}
			if ci.proto == "" {
				ci.proto = protocol(c, cc)
			}
			if st == http.StateActive {
				ci.served = true
			}
			if st == http.StateIdle {
				ci.idleSince = time.Now()
				if cc != nil {
					cc.idle.Store(true)
					if cc.head != nil {
						cc.head.reset(false)
					}
				}
			}
		}
	}
}

// closeReason says why a connection that net/http let go of (StateClosed)
// or gave up (StateHijacked) ended, from its state and what its reads and
// writes saw.
func (s *Server) closeReason(st http.ConnState, ci *connInfo, cc *clientConn) CloseReason {
	var rd readEnd
	var wrote bool
	if cc != nil {
		rd, wrote = readEnd(cc.readEnd.Load()), cc.writeFailed.Load()
	}
	switch {
	case st == http.StateHijacked:
		return ClosedUpgraded
	case ci.drained || s.stopping.Load():
		return ClosedDrain
	case wrote || rd == readFailed:
		return ClosedError
	case rd == readEOF:
		return ClosedClientClosed
	case ci.state == http.StateIdle:
		return ClosedIdleTimeout // a read deadline, or HTTP/2's idle timer
	case rd == readTimeout || !ci.served:
		return ClosedError // read_header_timeout, a failed TLS handshake
	}
	return ClosedAfterRequest
}

// protocol names what a connection speaks, once it has carried a request.
func protocol(c net.Conn, cc *clientConn) string {
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		return "h2"
	}
	if cc != nil && cc.h2c.Load() {
		return "h2c"
	}
	return "http/1.1"
}

// Connections is a snapshot of a Server's open client connections.
type Connections struct {
	Open, Idle int
	// Released counts idle connections held without net/http (release.go).
	Released int
	// ByProtocol counts open connections as "http/1.1", "h2", "h2c", and
	// "none" before a first request; connections upgraded to h2c are "h2c".
	ByProtocol map[string]int
}

// Connections counts the open client connections, in one pass.
func (s *Server) Connections() Connections {
	cs := Connections{ByProtocol: map[string]int{"http/1.1": 0, "h2": 0, "h2c": 0, "none": 0}}
	if s.h2c != nil {
		s.h2c.mu.Lock()
		cs.ByProtocol["h2c"] += s.h2c.active
		s.h2c.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs.Open = len(s.conns)
	for _, ci := range s.conns {
		if ci.state == http.StateIdle {
			cs.Idle++
		}
		if ci.held {
			cs.Released++
		}
		if ci.proto == "" {
			cs.ByProtocol["none"]++
		} else {
			cs.ByProtocol[ci.proto]++
		}
	}
	return cs
}

// Counts returns the open connections, and how many are idle.
func (s *Server) Counts() (open, idle int) {
	cs := s.Connections()
	return cs.Open, cs.Idle
}

// CloseIdleSince closes keep-alive connections that have been idle since
// before t and for at least grace: a client that used the connection after
// the gateway started asking clients to go has seen Connection: close on its
// response, and a connection idle for a while is not being reached for.
func (s *Server) CloseIdleSince(t time.Time, grace time.Duration) int {
	now := time.Now()
	var idle []net.Conn
	s.mu.Lock()
	for c, ci := range s.conns {
		if ci.state == http.StateIdle && ci.idleSince.Before(t) && now.Sub(ci.idleSince) >= grace {
			ci.drained = true
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return len(idle)
}

// Shutdown stops accepting, closes idle connections, and waits for active
// ones to finish, until ctx ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	// Held connections are idle ones that net/http no longer knows of.
	var held []*clientConn
	s.mu.Lock()
	for c, ci := range s.conns {
		if ci.held {
			ci.drained = true
			held = append(held, c.(*clientConn))
		}
	}
	s.mu.Unlock()
	for _, c := range held {
		c.closeNow()
	}
	upgradedLeft := make(chan int, 1)
	if s.h2c != nil {
		go func() { upgradedLeft <- s.h2c.Shutdown(ctx) }()
	} else {
		upgradedLeft <- 0
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if n := <-upgradedLeft; n > 0 && err == nil {
		err = fmt.Errorf("%d upgraded HTTP/2 connections still open: %w", n, ctx.Err())
	}
	return err
}

// errorLog is the http.Server's error log: it counts failed TLS handshakes
// and passes every line on to the debug log.
type errorLog struct {
	s   *Server
	log *slog.Logger
}

func (e *errorLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		e.s.TLSHandshakeErrors.Add(1)
	}
	e.log.Debug(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// limitListener refuses connections beyond MaxConnections by closing them
// as soon as they are accepted: the client sees its connection closed at
// once instead of waiting in the accept queue.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		max := int64(l.s.opt.MaxConnections)
		if max > 0 && l.s.open.Load() >= max {
			l.s.Refused.Add(1)
			l.s.ClosedBy[ClosedMaxConnections].Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // an RST: nothing lingers for a refused client
			}
			c.Close()
			continue
		}
		l.s.open.Add(1)
		cc := &clientConn{Conn: c, s: l.s}
		if l.s.opt.TLS == nil {
			cc.head = &headTap{max: l.s.headLimit()}
		}
		if l.s.rl != nil {
			cc.handedBack = make(chan struct{}, 1)
		}
		return cc, nil
	}
}

// headLimit bounds the bytes a connection's headTap keeps: what net/http
// reads at most for a head (MaxHeaderBytes plus its 4 KiB slack), and a
// read buffer more.
func (s *Server) headLimit() int {
	n := s.opt.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return n + 8<<10
}
