package gateway_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestIdleConnectionMemory measures what 10,000 idle keep-alive client
// connections cost the gateway in resident memory (docs/performance.md).
// The client side lives in this process too, but holds only a socket per
// connection (no goroutine, no buffer), so the figure is an upper bound.
//
//	SLUICE_RSS=1 go test -run TestIdleConnectionMemory -v ./internal/gateway
func TestIdleConnectionMemory(t *testing.T) {
	if os.Getenv("SLUICE_RSS") == "" {
		t.Skip("set SLUICE_RSS=1 to measure (opens 10,000 connections)")
	}
	// Both ends are in this process: two descriptors a connection. Where the
	// hard limit forbids 10,000, measure as many as it allows.
	n := 10000
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if need := uint64(2*n + 1000); lim.Cur < need {
		want := syscall.Rlimit{Cur: min(need, lim.Max), Max: lim.Max}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		n = min(n, int(want.Cur-1000)/2)
	}
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`)
	debug.FreeOSMemory()
	before := rss(t)
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		// One request each, so every connection is an idle keep-alive one.
		c.Write([]byte(req))
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	// Stacks grown while serving the request shrink at GC; let a few pass.
	for i := 0; i < 4; i++ {
		runtime.GC()
	}
	debug.FreeOSMemory()
	after := rss(t)
	per := float64(after-before) / float64(n)
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	t.Logf("per connection: heap in use %.1f KiB, goroutine stacks %.1f KiB",
		float64(m1.HeapInuse-m0.HeapInuse)/float64(n)/1024, float64(m1.StackInuse-m0.StackInuse)/float64(n)/1024)
	t.Logf("RSS before %d KiB, after %d idle connections %d KiB: %.1f KiB per idle connection (goroutines %d)",
		before/1024, n, after/1024, per/1024, runtime.NumGoroutine())
}

func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Skip("no VmRSS")
	return 0
}
