package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// TestIdleConnectionMemory measures what 10,000 idle keep-alive client
// connections cost the gateway in resident memory (docs/performance.md):
// with server.release_idle_after off, where net/http serves each one with
// its goroutine and buffers, and with the default (1s), once every one has
// been released. The client side lives in this process too, but holds only
// a socket per connection (no goroutine, no buffer), so the figures are
// upper bounds.
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
	if n < 2000 {
		t.Skipf("the file-descriptor limit (%d) allows only %d connections: too few to measure", lim.Max, n)
	}
	backend := echoProto(t)
	measure := func(t *testing.T, release string) float64 {
		g := gatewaytest.Start(t, `
			upstreams:
			  b:
			    endpoints: ["`+backend+`"]
			routes:
			  - id: r
			    uri: lb://b`, gatewaytest.WithServer("release_idle_after: "+release))
		before := settle(t)
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
		if release != "0s" {
			// Wait (bounded) until every connection is released.
			for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if held := sampleSum(t, g, "sluice_downstream_connections", `state="released"`); held >= float64(n) {
					break
				} else if time.Now().After(end) {
					t.Fatalf("%v of %d connections released after 30s", held, n)
				}
			}
		}
		after := settle(t)
		t.Logf("release_idle_after %s: %s", release, after.per(before, n))
		// The connections still work.
		for _, c := range conns[:10] {
			c.Write([]byte(req))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("request on an idle connection: %v", err)
			}
			resp.Body.Close()
		}
		return float64(after.rss-before.rss) / float64(n)
	}
	t.Run("served by net/http", func(t *testing.T) { measure(t, "0s") })
	t.Run("released", func(t *testing.T) {
		if perConn := measure(t, "1s"); perConn > 10<<10 {
			t.Errorf("released idle connections cost %.1f KiB each, target under 10 KiB", perConn/1024)
		}
	})
}

// sampleSum adds up the samples of metric name whose labels contain label.
func sampleSum(t *testing.T, g *gateway.Gateway, name, label string) float64 {
	_, body := adminGet(t, g, "/metrics")
	sum := 0.0
	for _, l := range strings.Split(body, "\n") {
		if m := sampleLine.FindStringSubmatch(l); m != nil && m[1] == name && strings.Contains(m[2], label) {
			v, _ := strconv.ParseFloat(m[3], 64)
			sum += v
		}
	}
	return sum
}

type memSample struct {
	rss          int64
	heap, stacks uint64
	goroutines   int
}

// settle collects garbage (stacks grown while serving shrink at GC, so let
// a few pass), returns freed memory to the system, and samples.
func settle(t *testing.T) memSample {
	for i := 0; i < 4; i++ {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{rss: rss(t), heap: m.HeapInuse, stacks: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

func (s memSample) per(before memSample, n int) string {
	return fmt.Sprintf("%d connections: RSS %.1f KiB each (Go heap %.1f KiB, goroutine stacks %.1f KiB), %d goroutines",
		n, float64(s.rss-before.rss)/float64(n)/1024, (float64(s.heap)-float64(before.heap))/float64(n)/1024,
		(float64(s.stacks)-float64(before.stacks))/float64(n)/1024, s.goroutines)
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
