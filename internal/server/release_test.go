//go:build unix

package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// startRelease runs a Server that releases idle connections after 50 ms,
// with a handler that answers the request's path and its connection's
// request count.
func startRelease(t *testing.T, opt Options) *Server {
	t.Helper()
	opt.Addr = "127.0.0.1:0"
	if opt.ReleaseIdleAfter == 0 {
		opt.ReleaseIdleAfter = 50 * time.Millisecond
	}
	if opt.IdleTimeout == 0 {
		opt.IdleTimeout = 10 * time.Second
	}
	if opt.ReadHeaderTimeout == 0 {
		opt.ReadHeaderTimeout = 5 * time.Second
	}
	var served atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d %s", r.Method, r.URL.Path, served.Add(1), body)
	})
	s, err := Listen(opt, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawClient) send(raw string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, raw); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawClient) response() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }

// waitHeld waits (bounded) until n connections are held by waiters.
func waitHeld(t *testing.T, s *Server, n int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if s.Held() == n {
			return
		}
	}
	t.Fatalf("held connections: %d, want %d", s.Held(), n)
}

// An idle keep-alive connection is released and held, then served again
// when the client sends, any number of times; it stays one open, idle
// connection throughout.
func TestReleaseAndResume(t *testing.T) {
	s := startRelease(t, Options{})
	c := dialRaw(t, s)
	for i := 1; i <= 4; i++ {
		c.send(get(fmt.Sprintf("/r%d", i)))
		if got, want := c.response(), fmt.Sprintf("GET /r%d %d ", i, i); got != want {
			t.Fatalf("response %d: %q, want %q", i, got, want)
		}
		waitHeld(t, s, 1)
		if open, idle := s.Counts(); open != 1 || idle != 1 {
			t.Fatalf("while held: open %d idle %d, want 1 1", open, idle)
		}
	}
	// A POST with a body on a resumed connection.
	c.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if got := c.response(); got != "POST /p 5 hello" {
		t.Fatalf("POST: %q", got)
	}
	if a, cl := s.Accepted.Load(), s.Closed.Load(); a != 1 || cl != 0 {
		t.Fatalf("accepted %d closed %d, want 1 0", a, cl)
	}
}

// Pipelined requests and a request whose first bytes arrived before the
// pause are served whole: a connection is released only when net/http's
// buffer holds nothing of the next request.
func TestReleaseKeepsPartialRequests(t *testing.T) {
	s := startRelease(t, Options{})
	c := dialRaw(t, s)
	c.send(get("/a") + get("/b"))
	if got := c.response(); got != "GET /a 1 " {
		t.Fatalf("first: %q", got)
	}
	if got := c.response(); got != "GET /b 2 " {
		t.Fatalf("pipelined: %q", got)
	}
	waitHeld(t, s, 1)
	for _, cut := range []int{1, 2, 3, 5} {
		req := get(fmt.Sprintf("/cut%d", cut))
		c.send(req[:cut])
		time.Sleep(200 * time.Millisecond) // four times ReleaseIdleAfter
		if n := s.Held(); n != 0 {
			t.Fatalf("cut at %d: held %d with part of a request read", cut, n)
		}
		c.send(req[cut:])
		if got := c.response(); !strings.HasPrefix(got, fmt.Sprintf("GET /cut%d ", cut)) {
			t.Fatalf("cut at %d: %q", cut, got)
		}
		waitHeld(t, s, 1)
	}
	// The start of the next request sent with the previous one: it sits in
	// net/http's buffer when the connection turns idle.
	for _, cut := range []int{1, 3, 5} {
		req := get(fmt.Sprintf("/early%d", cut))
		c.send(get("/before") + req[:cut])
		if got := c.response(); !strings.HasPrefix(got, "GET /before ") {
			t.Fatalf("early cut at %d: %q", cut, got)
		}
		time.Sleep(200 * time.Millisecond)
		if n := s.Held(); n != 0 {
			t.Fatalf("early cut at %d: held %d with part of a request buffered", cut, n)
		}
		c.send(req[cut:])
		if got := c.response(); !strings.HasPrefix(got, fmt.Sprintf("GET /early%d ", cut)) {
			t.Fatalf("early cut at %d: %q", cut, got)
		}
		waitHeld(t, s, 1)
	}
}

// A held connection still ends at the idle timeout counted from its last
// response, and a client's close of a held connection is seen: both count
// as idle closes and give the max_connections place back.
func TestReleasedConnectionCloses(t *testing.T) {
	s := startRelease(t, Options{IdleTimeout: 400 * time.Millisecond, MaxConnections: 1})
	c := dialRaw(t, s)
	c.send(get("/"))
	c.response()
	start := time.Now()
	waitHeld(t, s, 1)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("held connection at idle timeout: %d bytes, %v; want EOF", n, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %s, want about the idle timeout (400ms)", d)
	}
	waitClosed(t, s, 1)

	c2 := dialRaw(t, s) // the place was given back
	c2.send(get("/"))
	c2.response()
	waitHeld(t, s, 1)
	c2.c.Close()
	waitClosed(t, s, 2)
	if to, cc := s.ClosedBy[ClosedIdleTimeout].Load(), s.ClosedBy[ClosedClientClosed].Load(); to != 1 || cc != 1 {
		t.Fatalf("closed by idle timeout %d, by the client %d; want 1 and 1", to, cc)
	}
	if open, _ := s.Counts(); open != 0 || s.open.Load() != 0 {
		t.Fatalf("open %d (counted %d), want 0", open, s.open.Load())
	}
}

func waitClosed(t *testing.T, s *Server, n uint64) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if s.Closed.Load() == n {
			return
		}
	}
	t.Fatalf("closed %d, want %d", s.Closed.Load(), n)
}

// HTTP/2 in clear text (prior knowledge) is never released: an idle h2c
// connection keeps working past ReleaseIdleAfter.
func TestReleaseLeavesH2C(t *testing.T) {
	s := startRelease(t, Options{H2C: true})
	var dials atomic.Int64
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := cl.Get("http://" + s.Addr().String() + "/h2")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("proto %s", resp.Proto)
		}
		time.Sleep(150 * time.Millisecond)
		if n := s.Held(); n != 0 {
			t.Fatalf("h2c connection held (%d)", n)
		}
	}
	if dials.Load() != 1 {
		t.Fatalf("%d connections for 3 requests, want 1", dials.Load())
	}
}

// The drain closes held connections like other idle ones (counted as
// drained), and Shutdown leaves none behind.
func TestReleasedConnectionsDrain(t *testing.T) {
	s := startRelease(t, Options{})
	a, b := dialRaw(t, s), dialRaw(t, s)
	for _, c := range []*rawClient{a, b} {
		c.send(get("/"))
		c.response()
	}
	waitHeld(t, s, 2)
	time.Sleep(20 * time.Millisecond)
	if n := s.CloseIdleSince(time.Now(), 10*time.Millisecond); n != 2 {
		t.Fatalf("closed %d idle, want 2", n)
	}
	waitClosed(t, s, 2)
	if n := s.ClosedBy[ClosedDrain].Load(); n != 2 {
		t.Fatalf("drained %d, want 2", n)
	}

	c := dialRaw(t, s)
	c.send(get("/"))
	c.response()
	waitHeld(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s, 3)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("held connection after Shutdown: %v, want EOF", err)
	}
}

// Many connections released and resumed at once, with requests racing the
// release deadline: every request is answered (run under -race).
func TestReleaseUnderChurn(t *testing.T) {
	s := startRelease(t, Options{ReleaseIdleAfter: 5 * time.Millisecond})
	const conns, rounds = 16, 12
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		go func() {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for j := 0; j < rounds; j++ {
				io.WriteString(c, get(fmt.Sprintf("/c%d/%d", i, j)))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("conn %d round %d: %w", i, j, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(b), fmt.Sprintf("GET /c%d/%d ", i, j)) {
					errs <- fmt.Errorf("conn %d round %d: %q", i, j, b)
					return
				}
				time.Sleep(time.Duration(j%4) * 3 * time.Millisecond) // before, around and after the release
			}
			errs <- nil
		}()
	}
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if a := s.Accepted.Load(); a != conns {
		t.Fatalf("accepted %d, want %d (a resumed connection is not a new one)", a, conns)
	}
}

// A request whose first byte arrives shortly before the release deadline and
// the rest shortly after it is answered: the idle read that got the first
// byte gives the socket back the deadline net/http asked for, so the read of
// the rest does not end at the release deadline (issue 13, case 5).
func TestReleaseDeadlineDoesNotCutARequestArrivingInPieces(t *testing.T) {
	s := startRelease(t, Options{ReleaseIdleAfter: 400 * time.Millisecond})
	c := dialRaw(t, s)
	c.send(get("/first"))
	if got := c.response(); got != "GET /first 1 " {
		t.Fatalf("first: %q", got)
	}
	req := get("/pieces")
	time.Sleep(250 * time.Millisecond) // idle, not yet released
	c.send(req[:1])
	time.Sleep(400 * time.Millisecond) // past the release deadline
	c.send(req[1:])
	if got := c.response(); got != "GET /pieces 2 " {
		t.Fatalf("request sent in pieces: %q", got)
	}
}
