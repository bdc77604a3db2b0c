// Package redistest runs real redis-server processes on free loopback ports
// for tests, the way httptest runs an HTTP server: one server (Start), a
// Redis Cluster (StartCluster) or a master with replicas watched by
// Sentinels (StartSentinel). Without redis-server (or redis-cli,
// redis-sentinel) on the PATH the test is skipped with a message, except
// under CI=true, where it fails: CI installs them (.ci/run).
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	// conf, when set, is written to dir/redis.conf before each start and
	// run with redis-sentinel ("{port}" and "{dir}" replaced).
	conf string
	cmd  *exec.Cmd
}

// Start starts redis-server (no persistence) and stops it at the end of the
// test. args are added to its command line; "{port}" in them stands for the
// chosen port, e.g. "--port", "0", "--tls-port", "{port}" to serve TLS only.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := newServer(t, "redis-server")
	for _, a := range args {
		s.args = append(s.args, s.expand(a))
	}
	s.start()
	return s
}

// newServer picks a free port and a directory for a server run by bin.
func newServer(t testing.TB, bin string) *Server {
	t.Helper()
	need(t, bin)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	return s
}

// need skips the test without bin on the PATH, or fails it under CI=true.
func need(t testing.TB, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found, and CI=true: .ci/run must install it", bin)
		}
		t.Skipf("%s not found on PATH: install it (apt-get install -y redis-server redis-sentinel redis-tools) to run this test", bin)
	}
}

func (s *Server) expand(a string) string {
	return strings.NewReplacer("{port}", strconv.Itoa(s.port), "{dir}", s.dir).Replace(a)
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server", append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "no", "--loglevel", "warning"}, s.args...)...)
	if s.conf != "" {
		// Sentinel rewrites its config file: a fresh one on every start.
		file := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(file, []byte(s.expand(s.conf)), 0o600); err != nil {
			s.t.Fatal(err)
		}
		cmd = exec.Command("redis-sentinel", file)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", cmd.Path, err)
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
