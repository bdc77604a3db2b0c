package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// A connection found dead when leased was never active: dropping it must
// not move the active gauge.
func TestActiveStaysZeroWhenLeaseFindsDeadConnection(t *testing.T) {
	b := startBackend(t, nil, 30*time.Millisecond) // closes idle conns after 30ms
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	for range 3 {
		if _, err := get(t, p, http.MethodGet); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // closed by the backend, below the sweeper's probeAfter
	}
	if s := p.Stats(); s.Active != 0 || s.Closed[ReasonPeerClosed] == 0 {
		t.Fatalf("active = %d after every request ended (peer-closed %d), want 0", s.Active, s.Closed[ReasonPeerClosed])
	}
}

// An idle connection too old to be reused must not keep a request waiting
// for a slot that it holds: with max_connections 1, it makes room.
func TestUnusableIdleConnectionYieldsItsSlot(t *testing.T) {
	b := startBackend(t, nil, 0)
	p := New(Options{Addr: b.addr(), MaxConnections: 1, MaxIdleTime: 3 * time.Second})
	defer p.Drain(nil)
	if _, err := get(t, p, http.MethodGet); err != nil {
		t.Fatal(err)
	}
	time.Sleep(unprovenWindow + 300*time.Millisecond) // idle past the reuse window: kept only as an observer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequest("GET", "http://"+p.Addr()+"/", nil)
	resp, err := p.RoundTrip(ctx, req, time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatalf("request behind an idle observer with max_connections 1: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if s := p.Stats(); s.Open != 1 || s.Waiting != 0 {
		t.Fatalf("open = %d waiting = %d, want 1 and 0", s.Open, s.Waiting)
	}
}

// A request waiting for a slot gives up at its deadline, not only when its
// context ends.
func TestSlotWaitEndsAtDeadline(t *testing.T) {
	hold := make(chan struct{})
	b := startBackend(t, func(w http.ResponseWriter, r *http.Request) { <-hold }, 0)
	defer close(hold)
	p := New(Options{Addr: b.addr(), MaxConnections: 1})
	defer p.Drain(nil)
	go get(t, p, http.MethodGet) // holds the only slot
	waitFor(t, func() bool { return p.Stats().Open == 1 })
	req, _ := http.NewRequest("GET", "http://"+p.Addr()+"/", nil)
	done := make(chan error, 1)
	go func() {
		_, err := p.RoundTrip(context.Background(), req, time.Now().Add(200*time.Millisecond))
		done <- err
	}()
	select {
	case err := <-done:
		var pe *Error
		if !errors.As(err, &pe) || pe.Stage != StageWait || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want StageWait with DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait for a slot ignored the request's deadline")
	}
	if s := p.Stats(); s.Waiting != 0 {
		t.Fatalf("waiting = %d after the waiter gave up", s.Waiting)
	}
}

// A dial gets what is left of the request's deadline when that is shorter
// than connect_timeout.
func TestDialEndsAtRequestDeadline(t *testing.T) {
	addr := unansweredListener(t)
	p := New(Options{Addr: addr, ConnectTimeout: 10 * time.Second})
	defer p.Drain(nil)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	start := time.Now()
	_, err := p.RoundTrip(context.Background(), req, start.Add(300*time.Millisecond))
	var pe *Error
	if !errors.As(err, &pe) || pe.Stage != StageDial {
		t.Fatalf("err = %v, want StageDial", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("dial took %v with 300ms left of the deadline", d)
	}
}

// unansweredListener returns the address of a socket on 127.0.0.1 whose
// accept queue is full, so that further connects hang without an answer.
func unansweredListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := syscall.Getsockname(fd)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: got.(*syscall.SockaddrInet4).Port}).String()
	// Fill the accept queue; a connect that then hangs shows it is full.
	for range 8 {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue")
	return ""
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached in 5s")
}
