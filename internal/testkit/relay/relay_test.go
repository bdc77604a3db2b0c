package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a one-purpose TCP server on 127.0.0.1 for relay tests.
type server struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startServer(t *testing.T, handle func(c *net.TCPConn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

func startRelay(t *testing.T, target string, latency time.Duration) *Relay {
	t.Helper()
	r, err := Start(target, func() time.Duration { return latency })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn)
}

func TestDataOrderAndLatency(t *testing.T) {
	const latency = 20 * time.Millisecond
	s := startServer(t, echo)
	r, err := Start(s.addr(), Uniform(latency, 2*latency))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := dial(t, r.Addr())

	var want bytes.Buffer
	var chunks [][]byte
	for i := range 200 {
		chunk := bytes.Repeat([]byte{byte(i)}, 1+i*37%4000)
		want.Write(chunk)
		chunks = append(chunks, chunk)
	}
	start := time.Now()
	go func() {
		for _, chunk := range chunks {
			c.Write(chunk)
		}
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 2*latency {
		t.Errorf("round trip took %v, want ≥ %v", elapsed, 2*latency)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d, or out of order", len(got), want.Len())
	}
}

func TestFirstByteWaitsTwoLatencies(t *testing.T) {
	const latency = 30 * time.Millisecond
	s := startServer(t, echo)
	r := startRelay(t, s.addr(), latency)
	c := dial(t, r.Addr())
	buf := make([]byte, 1)
	for range 3 {
		start := time.Now()
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 2*latency {
			t.Errorf("rtt %v, want ≥ %v", rtt, 2*latency)
		}
	}
}

func TestClientFINIsHalfClose(t *testing.T) {
	// The server reads to EOF, then answers: the answer must still arrive.
	s := startServer(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte("got " + string(b)))
	})
	r := startRelay(t, s.addr(), 5*time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("hello"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "got hello" {
		t.Fatalf("got %q", got)
	}
}

func TestServerFINIsHalfClose(t *testing.T) {
	// The server half-closes first; the client still sends afterwards.
	received := make(chan string, 1)
	s := startServer(t, func(c *net.TCPConn) {
		c.Write([]byte("bye"))
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		received <- string(b)
	})
	r := startRelay(t, s.addr(), 5*time.Millisecond)
	c := dial(t, r.Addr())
	got, err := io.ReadAll(c) // ends at the propagated FIN
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "bye" {
		t.Fatalf("got %q", got)
	}
	c.Write([]byte("after fin"))
	c.CloseWrite()
	select {
	case b := <-received:
		if b != "after fin" {
			t.Fatalf("server got %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not receive data sent after its FIN")
	}
}

func TestFINIsDelayed(t *testing.T) {
	const latency = 50 * time.Millisecond
	s := startServer(t, func(c *net.TCPConn) { c.CloseWrite(); io.Copy(io.Discard, c) })
	r := startRelay(t, s.addr(), latency)
	start := time.Now()
	c := dial(t, r.Addr())
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	if d := time.Since(start); d < 2*latency { // connect + FIN back
		t.Errorf("FIN arrived after %v, want ≥ %v", d, 2*latency)
	}
}

func TestServerRSTBecomesClientRST(t *testing.T) {
	s := startServer(t, func(c *net.TCPConn) {
		c.Read(make([]byte, 10))
		c.SetLinger(0)
		c.Close()
	})
	r := startRelay(t, s.addr(), 5*time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("ping"))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v, want ECONNRESET", err)
	}
}

func TestClientRSTBecomesServerRST(t *testing.T) {
	got := make(chan error, 1)
	s := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c)
		got <- err
	})
	r := startRelay(t, s.addr(), 5*time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("ping"))
	time.Sleep(30 * time.Millisecond)
	c.SetLinger(0)
	c.Close()
	if err := <-got; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server read: %v, want ECONNRESET", err)
	}
}

func TestWriteToClosedServerBecomesRST(t *testing.T) {
	// The server closes fully; the client keeps writing and must see a reset,
	// as it would when the server's kernel answers with RST.
	s := startServer(t, func(c *net.TCPConn) {})
	r := startRelay(t, s.addr(), 2*time.Millisecond)
	c := dial(t, r.Addr())
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Write([]byte("data"))
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && err != io.EOF {
		t.Fatalf("got %v, want a reset", err)
	}
}

func TestRefusedDialResetsClient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	r := startRelay(t, dead, time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) && err != io.EOF {
		t.Fatalf("read: %v, want ECONNRESET or EOF", err)
	}
}

func TestSetDownRefusesConnects(t *testing.T) {
	s := startServer(t, echo)
	r := startRelay(t, s.addr(), 0)
	if err := r.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", r.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while down: %v, want ECONNREFUSED", err)
	}
	if err := r.SetDown(false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, r.Addr())
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestSetTargetsRoundRobin(t *testing.T) {
	name := func(n string) func(c *net.TCPConn) {
		return func(c *net.TCPConn) { c.Write([]byte(n)) }
	}
	a := startServer(t, name("a"))
	b := startServer(t, name("b"))
	r := startRelay(t, a.addr(), 0)
	read := func() string {
		c := dial(t, r.Addr())
		got, _ := io.ReadAll(c)
		return string(got)
	}
	if got := read(); got != "a" {
		t.Fatalf("got %q", got)
	}
	r.SetTargets([]string{a.addr(), b.addr()})
	var got []string
	for range 4 {
		got = append(got, read())
	}
	if s := strings.Join(got, ""); s != "abab" {
		t.Fatalf("got %q, want abab", s)
	}
}

func TestDropIdleBlackholes(t *testing.T) {
	s := startServer(t, echo)
	r := startRelay(t, s.addr(), 0)
	r.SetDropIdle(100 * time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	c.Write([]byte("y"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read after idle: %v, want a timeout (no data, no FIN, no RST)", err)
	}
}

func TestForgetFlowsResetsOnNextSend(t *testing.T) {
	s := startServer(t, echo)
	r := startRelay(t, s.addr(), 2*time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	r.ForgetFlows()
	// Nothing reaches the client until it sends.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read before send: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("y"))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after send: %v, want ECONNRESET", err)
	}
}

func TestCloseResetsConns(t *testing.T) {
	s := startServer(t, echo)
	r, err := Start(s.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r.Addr())
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	if r.Conns() != 1 {
		t.Fatalf("Conns = %d, want 1", r.Conns())
	}
	r.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Close: %v, want ECONNRESET", err)
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestForgetFlowsResetsWaitingClient(t *testing.T) {
	// The server never answers: the client's request is in flight.
	s := startServer(t, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	r := startRelay(t, s.addr(), 2*time.Millisecond)
	c := dial(t, r.Addr())
	c.Write([]byte("request"))
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	r.ForgetFlows()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v, want ECONNRESET", err)
	}
	if d := time.Since(start); d < retransmitTimeout {
		t.Errorf("reset after %v, want ≥ %v", d, retransmitTimeout)
	}
}
