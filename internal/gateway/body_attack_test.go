package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/testkit/h2ctest"
)

// slowBody opens a connection to addr and sends a POST head declaring a
// body of 1000 bytes, then one byte of it every gap, for at most n bytes;
// it returns the response the gateway gives, or fails after 30 s.
func slowBody(t *testing.T, addr, path string, gap time.Duration, n int) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n")
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			close(got)
			return
		}
		got <- resp
	}()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for sent := 0; ; {
		select {
		case resp, ok := <-got:
			if !ok {
				t.Fatal("the connection ended without a response")
			}
			return resp
		case <-tick.C:
			if sent < n {
				c.Write([]byte{'x'})
				sent++
			}
		}
	}
}

// A client that stalls in its body, or trickles it, is answered 408 and
// counted, and the slot of the route's concurrency limit it held is free
// again for the next client.
func TestSlowRequestBody(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		routes:
		  - id: lenient
		    uri: http://`+be.Addr()+`
		    predicates: [Path=/lenient/**]
		    body_timeout: 0
		    body_min_rate: 0
		  - id: r
		    uri: http://`+be.Addr()+`
		    max_concurrent_requests: 1
		`, gatewaytest.WithServer("body_timeout: 1s\nbody_min_rate: 100"))

	t.Run("a body that stalls is answered 408", func(t *testing.T) {
		resp := slowBody(t, g.Addr(), "/x", time.Hour, 0)
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Sluice-Reason") != "request_body_timeout" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("X-Sluice-Reason"))
		}
	})
	t.Run("an HTTP/2 body that stalls is answered 408", func(t *testing.T) {
		fr := h2ctest.PriorKnowledge(t, g.Addr())
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "gw"}, {":path", "/x"}, {"content-length", "1000"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
		fr.WriteData(1, false, []byte("x"))
		if status := h2ctest.Status(t, fr, 1); status != "408" {
			t.Fatalf("got %s", status)
		}
	})
	t.Run("a body trickled below the minimum rate is answered 408 and frees the route's slot", func(t *testing.T) {
		start := time.Now()
		resp := slowBody(t, g.Addr(), "/x", 300*time.Millisecond, 1000)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("got %d", resp.StatusCode)
		}
		if d := time.Since(start); d < 4*time.Second {
			t.Errorf("refused after %v, before the 5 s grace", d)
		}
		resp, _ = gatewaytest.Get(t, g, "/x")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the next request got %d", resp.StatusCode)
		}
	})
	t.Run("a route may lift the limits", func(t *testing.T) {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "POST /lenient/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\r\nab")
		time.Sleep(2 * time.Second) // longer than body_timeout
		io.WriteString(c, "cd")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("the lenient route answered %v, %v", resp, err)
		}
	})
	if n := sampleSum(t, g, "sluice_requests_total", `reason="request_body_timeout"`); n != 3 {
		t.Errorf("sluice_requests_total{reason=request_body_timeout} = %v, want 3", n)
	}
}
