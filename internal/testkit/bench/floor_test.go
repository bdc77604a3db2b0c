package bench

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Both floors forward GETs, HEADs and POSTs (small, 100 KiB, chunked) over
// kept-alive upstream connections, passing status, headers and bodies
// through, a client's Connection: close ends the client's connection but
// not the upstream one, and a connection the backend closes is not reused: they are
// measured as proxies, so they must be ones. Each runs as its own process
// (the test binary, as sluice-bench runs it) in front of a real backend.
func TestFloorsForward(t *testing.T) {
	for _, peer := range []string{"floor", "fastfloor"} {
		t.Run(peer, func(t *testing.T) { testFloorForwards(t, peer) })
	}
}

func testFloorForwards(t *testing.T, peer string) {
	var conns atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", fmt.Sprintf("%s %s %d %x", r.Method, r.URL.RequestURI(), len(b), sha256.Sum256(b)))
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
			return
		}
		if r.Method == "HEAD" { // else net/http closes after it, not knowing the length
			w.Header().Set("Content-Length", strconv.Itoa(100<<10))
		}
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(strings.Repeat("x", 100<<10))) // chunked: no Content-Length
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	addr := startFloor(t, peer, backend.Listener.Addr().String())

	big := strings.Repeat("0123456789abcdef", 100<<10/16)
	client := &http.Client{Transport: &http.Transport{}}
	for _, tc := range []struct {
		desc, method, path, body string
		chunked, close           bool
		wantConns                int32
	}{
		{desc: "GET", method: "GET", path: "/a?b=1", wantConns: 1},
		{desc: "small POST", method: "POST", path: "/a?b=1", body: "hello", wantConns: 1},
		{desc: "100 KiB POST", method: "POST", path: "/a", body: big, wantConns: 1},
		{desc: "chunked POST", method: "POST", path: "/a", body: big, chunked: true, wantConns: 1},
		{desc: "HEAD", method: "HEAD", path: "/a", wantConns: 1},
		{desc: "GET again", method: "GET", path: "/a?b=1", wantConns: 1},
		{desc: "client closes", method: "GET", path: "/a?b=1", close: true, wantConns: 1},
		{desc: "backend closes", method: "GET", path: "/close", wantConns: 1},
		{desc: "GET after close", method: "GET", path: "/a", wantConns: 2},
	} {
		var body io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			body = struct{ io.Reader }{body} // unknown length: the client sends it chunked
		}
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, body)
		req.Close = tc.close
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%s %s %d %x", tc.method, tc.path, len(tc.body), sha256.Sum256([]byte(tc.body)))
		wantStatus, wantLen := http.StatusTeapot, 100<<10
		switch {
		case tc.path == "/close":
			wantStatus, wantLen = http.StatusOK, 3
		case tc.method == "HEAD":
			wantLen = 0
		}
		if resp.StatusCode != wantStatus || resp.Header.Get("X-Seen") != want || len(b) != wantLen {
			t.Errorf("%s: %d %q, %d bytes; want %d %q, %d bytes", tc.desc, resp.StatusCode, resp.Header.Get("X-Seen"), len(b),
				wantStatus, want, wantLen)
		}
		if resp.Close != tc.close {
			t.Errorf("%s: response closes the client connection: %v, want %v", tc.desc, resp.Close, tc.close)
		}
		if n := conns.Load(); n != tc.wantConns {
			t.Errorf("%s: %d upstream connections so far, want %d", tc.desc, n, tc.wantConns)
		}
	}
}

// startFloor runs the test binary as the floor peer and waits until it listens.
func startFloor(t *testing.T, peer, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, peer, "--listen", addr, "--upstream", upstream)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if i == 250 {
			t.Fatalf("%s did not start listening", peer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
