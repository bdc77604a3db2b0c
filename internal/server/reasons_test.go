package server

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// Every way a client connection ends is counted under its own reason.
func TestCloseReasons(t *testing.T) {
	s := startRelease(t, Options{IdleTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 300 * time.Millisecond,
		ReleaseIdleAfter: time.Hour, MaxConnections: 2})
	waitReason := func(r CloseReason, n uint64) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); s.ClosedBy[r].Load() != n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: %d, want %d", r, s.ClosedBy[r].Load(), n)
			}
		}
	}

	// A keep-alive connection left idle.
	idle := dialRaw(t, s)
	idle.send(get("/"))
	idle.response()
	waitReason(ClosedIdleTimeout, 1)

	// The client closes its idle connection.
	gone := dialRaw(t, s)
	gone.send(get("/"))
	gone.response()
	gone.c.Close()
	waitReason(ClosedClientClosed, 1)

	// Request headers that never finish (slowloris).
	slow := dialRaw(t, s)
	slow.send("GET / HTTP/1.1\r\nHost: x\r\n")
	waitReason(ClosedError, 1)

	// Connection: close.
	done := dialRaw(t, s)
	done.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	done.response()
	waitReason(ClosedAfterRequest, 1)

	// Two open (max_connections: 2): one more is refused.
	a, b := dialRaw(t, s), dialRaw(t, s)
	a.send(get("/"))
	a.response()
	b.send(get("/"))
	b.response()
	// Refused with a reset, which may come before Dial returns.
	extra, err := net.Dial("tcp", s.Addr().String())
	switch {
	case errors.Is(err, syscall.ECONNRESET):
	case err != nil:
		t.Fatal(err)
	default:
		defer extra.Close()
		extra.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(extra) // EOF or reset: refused
	}
	waitReason(ClosedMaxConnections, 1)

	for _, r := range []CloseReason{ClosedClientClosed, ClosedError, ClosedAfterRequest, ClosedUpgraded, ClosedDrain} {
		if got := s.ClosedBy[r].Load(); got != map[CloseReason]uint64{ClosedClientClosed: 1, ClosedError: 1, ClosedAfterRequest: 1}[r] {
			t.Errorf("%s: %d at the end", r, got)
		}
	}
}
