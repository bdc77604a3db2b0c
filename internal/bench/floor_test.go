package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The floor forwards GETs and POSTs over kept-alive upstream connections,
// passing status, headers and bodies through: it is measured as a proxy, so
// it must be one.
func TestFloorForwards(t *testing.T) {
	var conns atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+string(b))
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(strings.Repeat("x", 100<<10)))
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()

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
	cmd := exec.Command(self, "floor", "--listen", addr, "--upstream", backend.Listener.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("floor did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}

	client := &http.Client{Transport: &http.Transport{}}
	for i, tc := range []struct{ method, body, want string }{
		{"GET", "", "GET /a?b=1"},
		{"POST", "hello", "POST /a?b=1 hello"},
		{"GET", "", "GET /a?b=1"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+"/a?b=1", strings.NewReader(tc.body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Seen") != tc.want || len(b) != 100<<10 {
			t.Errorf("request %d: %d %q, %d bytes", i, resp.StatusCode, resp.Header.Get("X-Seen"), len(b))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 3 sequential requests, want 1 kept alive", n)
	}
}
