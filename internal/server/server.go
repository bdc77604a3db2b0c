// Package server runs the proxy's listeners and carries out the drain
// protocol: a gateway that is asked to stop first stops being ready, keeps
// serving while load balancers notice, then asks every client to go, stops
// accepting, lets in-flight requests finish, and only then exits.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
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
}

// Server is one proxy listener and its http.Server.
type Server struct {
	opt Options
	srv *http.Server
	ln  net.Listener
	log *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]*connInfo

	Accepted, Closed atomic.Uint64
}

type connInfo struct {
	state     http.ConnState
	idleSince time.Time
}

// Listen binds the listener; Serve runs it.
func Listen(opt Options, h http.Handler, log *slog.Logger) (*Server, error) {
	lc := net.ListenConfig{KeepAliveConfig: opt.KeepAlive}
	if opt.ReusePort {
		lc.Control = reusePort
	}
	ln, err := lc.Listen(context.Background(), "tcp", opt.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{opt: opt, ln: ln, log: log, conns: map[net.Conn]*connInfo{}}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		MaxHeaderBytes:    opt.MaxHeaderBytes,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.Accepted.Add(1)
		s.conns[c] = &connInfo{state: st}
	case http.StateHijacked, http.StateClosed:
		if _, ok := s.conns[c]; ok {
			delete(s.conns, c)
			s.Closed.Add(1)
		}
	default:
		if ci := s.conns[c]; ci != nil {
			ci.state = st
			if st == http.StateIdle {
				ci.idleSince = time.Now()
			}
		}
	}
}

// Counts returns the open connections, and how many are idle.
func (s *Server) Counts() (open, idle int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ci := range s.conns {
		if ci.state == http.StateIdle {
			idle++
		}
	}
	return len(s.conns), idle
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
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
