// Package redistest runs a real redis-server on a free loopback port for
// tests, the way httptest runs an HTTP server. Without redis-server on the
// PATH the test is skipped with a message, except under CI=true, where it
// fails: CI installs redis-server (.ci/run).
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process. Kill and Restart let a test take Redis
// away and bring it back on the same port.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// Start starts redis-server (no persistence) and stops it at the end of the
// test. args are added to its command line; "{port}" in them stands for the
// chosen port, e.g. "--port", "0", "--tls-port", "{port}" to serve TLS only.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found, and CI=true: .ci/run must install it")
		}
		t.Skip("redis-server not found on PATH: install it (apt-get install -y redis-server) to run this test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, dir: t.TempDir()}
	for _, a := range args {
		s.args = append(s.args, strings.ReplaceAll(a, "{port}", strconv.Itoa(port)))
	}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "no", "--loglevel", "warning"}, s.args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("redis-server did not listen on %s within 5s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server abruptly (SIGKILL to its PID) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a new, empty server on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// PID is the running server's process id (0 when killed).
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// String describes the server for messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server pid %d on %s", s.PID(), s.Addr) }
