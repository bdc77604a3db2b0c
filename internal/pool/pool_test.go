package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real HTTP server on 127.0.0.1 that counts connections.
type backend struct {
	srv   *http.Server
	ln    net.Listener
	conns atomic.Int64
}

func startBackend(t testing.TB, h http.HandlerFunc, idle time.Duration) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, h, idle)
}

func serveOn(t testing.TB, ln net.Listener, h http.HandlerFunc, idle time.Duration) *backend {
	b := &backend{ln: ln}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); w.Write([]byte("ok")) }
	}
	b.srv = &http.Server{Handler: h, IdleTimeout: idle, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func get(t *testing.T, p *Pool, method string) (int, error) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("hello")
	}
	req, _ := http.NewRequest(method, "http://"+p.Addr()+"/", body)
	resp, err := p.RoundTrip(context.Background(), req, time.Now().Add(5*time.Second))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestReusesMostRecentlyUsed(t *testing.T) {
	b := startBackend(t, nil, 0)
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	for i := 0; i < 20; i++ {
		if _, err := get(t, p, http.MethodGet); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("sequential requests used %d connections, want 1", n)
	}
	s := p.Stats()
	if s.Reused != 19 || s.Idle != 1 || s.Open != 1 || s.Active != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestProbeFindsClosedIdleConnection(t *testing.T) {
	b := startBackend(t, nil, 50*time.Millisecond) // closes idle conns after 50ms
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	if _, err := get(t, p, http.MethodPost); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the FIN has arrived; the sweeper may not have run
	if _, err := get(t, p, http.MethodPost); err != nil {
		t.Fatalf("POST after the backend closed the idle connection: %v", err)
	}
	if n := b.conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
}

func TestAdvertisedKeepAlive(t *testing.T) {
	tests := []struct {
		name   string
		header string
		window time.Duration
		pooled bool
	}{
		{"timeout=5", "timeout=5, max=100", 4 * time.Second, true},
		{"timeout=1 is not pooled", "timeout=1", 0, false},
		{"timeout=0 is not pooled", "timeout=0", 0, false},
		{"max=1 retires the connection", "timeout=5, max=1", 4 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Keep-Alive", tc.header)
				w.Write([]byte("ok"))
			}, 0)
			p := New(Options{Addr: b.addr()})
			defer p.Drain(nil)
			for i := 0; i < 3; i++ {
				if _, err := get(t, p, http.MethodGet); err != nil {
					t.Fatal(err)
				}
			}
			s := p.Stats()
			if s.Window != tc.window {
				t.Errorf("window = %v, want %v", s.Window, tc.window)
			}
			want := int64(1)
			if !tc.pooled {
				want = 3
			}
			if n := b.conns.Load(); n != want {
				t.Errorf("connections = %d, want %d", n, want)
			}
		})
	}
}

func TestConnectionCloseIsHonoured(t *testing.T) {
	var n atomic.Int64
	b := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		w.Write([]byte("ok"))
	}, 0)
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	for i := 0; i < 9; i++ {
		if _, err := get(t, p, http.MethodPost); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if c := b.conns.Load(); c != 3 {
		t.Fatalf("connections = %d, want 3", c)
	}
	if s := p.Stats(); s.Closed[ReasonKeepAliveHint] != 3 {
		t.Fatalf("closed by hint = %d, want 3", s.Closed[ReasonKeepAliveHint])
	}
}

func TestLearnsUnannouncedIdleTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2.5s")
	}
	b := startBackend(t, nil, time.Second) // closes idle conns after 1s, says nothing
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	// Two connections: one is reused, one is left idle as an observer.
	done := make(chan struct{})
	go func() { get(t, p, http.MethodGet); close(done) }()
	get(t, p, http.MethodGet)
	<-done
	time.Sleep(1500 * time.Millisecond)
	w := p.Stats().Window
	if w <= 0 || w >= time.Second-50*time.Millisecond {
		t.Fatalf("window after observing 1s closes = %v, want well below 1s", w)
	}
	if s := p.Stats(); s.Closed[ReasonPeerClosed] == 0 {
		t.Fatalf("no close observed: %+v", s)
	}
}

func TestRestartInvalidatesIdleConnections(t *testing.T) {
	b := startBackend(t, nil, 0)
	addr := b.addr()
	p := New(Options{Addr: addr})
	defer p.Drain(nil)
	// Fill the pool with 5 connections.
	start := make(chan struct{})
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go func() {
			<-start
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			resp, err := p.RoundTrip(context.Background(), req, time.Time{})
			if err == nil {
				time.Sleep(20 * time.Millisecond)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := p.Stats(); s.Idle != 5 {
		t.Fatalf("idle = %d, want 5", s.Idle)
	}
	// Simulate a stale pool the probe cannot see, as a reused connection
	// failing with a reset does.
	p.invalidate()
	if s := p.Stats(); s.Idle != 0 || s.Closed[ReasonStale] != 5 {
		t.Fatalf("after invalidation: %+v", s)
	}
}

func TestErrorStages(t *testing.T) {
	// A port with nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()

	// A backend that reads the request and closes without answering.
	rude, _ := net.Listen("tcp", "127.0.0.1:0")
	defer rude.Close()
	go func() {
		for {
			c, err := rude.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 4096)); c.Close() }()
		}
	}()
	// A backend that sends half a header block, then closes.
	half, _ := net.Listen("tcp", "127.0.0.1:0")
	defer half.Close()
	go func() {
		for {
			c, err := half.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 4096)); c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Le")); c.Close() }()
		}
	}()
	// A backend that answers the headers, then cuts the body.
	cut, _ := net.Listen("tcp", "127.0.0.1:0")
	defer cut.Close()
	go func() {
		for {
			c, err := cut.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Read(make([]byte, 4096))
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
				c.Close()
			}()
		}
	}()
	tests := []struct {
		name    string
		addr    string
		stage   Stage
		notSent bool
	}{
		{"refused", dead, StageDial, true},
		{"closed after reading", rude.Addr().String(), StageAwait, false},
		{"half a header", half.Addr().String(), StageHeaders, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Options{Addr: tc.addr, ConnectTimeout: time.Second})
			defer p.Drain(nil)
			_, err := get(t, p, http.MethodPost)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if pe.Stage != tc.stage || pe.NotSent() != tc.notSent {
				t.Fatalf("stage = %v notSent=%v, want %v %v (%v)", pe.Stage, pe.NotSent(), tc.stage, tc.notSent, pe)
			}
		})
	}
	t.Run("body cut", func(t *testing.T) {
		p := New(Options{Addr: cut.Addr().String()})
		defer p.Drain(nil)
		req, _ := http.NewRequest("GET", "http://x/", nil)
		resp, err := p.RoundTrip(context.Background(), req, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		var pe *Error
		if !errors.As(err, &pe) || pe.Stage != StageBody {
			t.Fatalf("body error = %v, want StageBody", err)
		}
		if s := p.Stats(); s.Open != 0 {
			t.Fatalf("broken connection kept: %+v", s)
		}
	})
}

func TestMaxConnectionsWaits(t *testing.T) {
	release := make(chan struct{})
	b := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte("ok"))
	}, 0)
	p := New(Options{Addr: b.addr(), MaxConnections: 2})
	defer p.Drain(nil)
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go func() { _, err := get(t, p, http.MethodGet); errs <- err }()
	}
	time.Sleep(100 * time.Millisecond)
	if s := p.Stats(); s.Open != 2 {
		t.Fatalf("open = %d, want 2", s.Open)
	}
	close(release)
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
	if s := p.Stats(); s.Waited != 3 {
		t.Fatalf("waited = %d, want 3", s.Waited)
	}
	// A waiter whose context ends gives up with StageWait.
	hold := make(chan struct{})
	b2 := startBackend(t, func(w http.ResponseWriter, r *http.Request) { <-hold }, 0)
	defer close(hold)
	p2 := New(Options{Addr: b2.addr(), MaxConnections: 1})
	go get(t, p2, http.MethodGet)
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequest("GET", "http://x/", nil)
	_, err := p2.RoundTrip(ctx, req, time.Time{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Stage != StageWait {
		t.Fatalf("err = %v, want StageWait", err)
	}
}

func TestMaxLifetimeAndRequests(t *testing.T) {
	b := startBackend(t, nil, 0)
	p := New(Options{Addr: b.addr(), MaxRequestsPerConn: 3})
	defer p.Drain(nil)
	for i := 0; i < 9; i++ {
		if _, err := get(t, p, http.MethodGet); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.conns.Load(); n != 3 {
		t.Fatalf("connections = %d, want 3 (3 requests each)", n)
	}
	b2 := startBackend(t, nil, 0)
	p2 := New(Options{Addr: b2.addr(), MaxLifetime: 100 * time.Millisecond})
	defer p2.Drain(nil)
	get(t, p2, http.MethodGet)
	time.Sleep(150 * time.Millisecond)
	get(t, p2, http.MethodGet)
	if n := b2.conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2 (the first outlived its lifetime)", n)
	}
}

func TestDrainClosesIdleAndWaitsForActive(t *testing.T) {
	release := make(chan struct{})
	b := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Write([]byte("ok"))
	}, 0)
	p := New(Options{Addr: b.addr()})
	get(t, p, http.MethodGet) // one idle connection
	got := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://x/slow", nil)
		resp, err := p.RoundTrip(context.Background(), req, time.Time{})
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	empty := make(chan struct{})
	p.Drain(func() { close(empty) })
	if s := p.Stats(); s.Idle != 0 || s.Open != 1 {
		t.Fatalf("after drain: %+v", s)
	}
	if _, err := get(t, p, http.MethodGet); !errors.Is(err, ErrDraining) {
		t.Fatalf("request to a draining pool: %v", err)
	}
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("in-flight request cut by drain: %v", err)
	}
	select {
	case <-empty:
	case <-time.After(time.Second):
		t.Fatal("onEmpty not called")
	}
}

func TestParseKeepAlive(t *testing.T) {
	tests := []struct {
		in           string
		timeout, max int
	}{
		{"timeout=5, max=100", 5, 100},
		{"timeout=5", 5, -1},
		{"max=3", -1, 3},
		{`timeout="7"`, 7, -1},
		{"TIMEOUT=2,MAX=9", 2, 9},
		{"timeout=-1, max=x", -1, -1},
		{"garbage", -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			to, m := parseKeepAlive(tc.in)
			if to != tc.timeout || m != tc.max {
				t.Fatalf("got %d,%d want %d,%d", to, m, tc.timeout, tc.max)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	max := 4 * time.Second
	tests := []struct {
		name string
		k    keepAlive
		want time.Duration
	}{
		{"unknown endpoint", keepAlive{}, unprovenWindow},
		{"seen alive at 3s", keepAlive{aliveAt: 3 * time.Second}, 2400 * time.Millisecond},
		{"closes at 1s", keepAlive{closedAt: time.Second, aliveAt: 900 * time.Millisecond}, 800 * time.Millisecond},
		{"advertised 5s", keepAlive{hint: 5 * time.Second}, 4 * time.Second},
		{"advertised 20s capped", keepAlive{hint: 20 * time.Second}, max},
		{"advertised but closes earlier", keepAlive{hint: 5 * time.Second, closedAt: 2 * time.Second}, 1600 * time.Millisecond},
		{"no pool", keepAlive{noPool: true}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.k.window(max); got != tc.want {
				t.Fatalf("window = %v, want %v", got, tc.want)
			}
		})
	}
	k := keepAlive{closedAt: time.Second}
	k.sawAlive(1100 * time.Millisecond)
	if k.closedAt != time.Second {
		t.Fatal("a survivor just past the learned close age should not erase it")
	}
	k.sawAlive(3 * time.Second)
	if k.closedAt != 0 {
		t.Fatal("a survivor well past the learned close age should erase it")
	}
	if k.sawClosed(0, time.Second) || k.sawClosed(100*time.Millisecond, 2*time.Second) {
		t.Fatal("a loose bracket must not teach anything")
	}
}

var _ = fmt.Sprint
