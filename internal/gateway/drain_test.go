package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

// A WebSocket open when the gateway drains gets a close frame 1001 (going
// away) from the gateway, in both directions, and the drain does not cut it.
func TestDrainSendsWebSocketsGoingAway(t *testing.T) {
	var backendSaw atomic.Int32
	upgrader := websocket.Upgrader{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, _, err := c.ReadMessage()
			if ce, ok := err.(*websocket.CloseError); ok {
				backendSaw.Store(int32(ce.Code))
				return
			}
			if err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	g, err := gatewaytest.TryStart(`
		upstreams:
		  b:
		    endpoints: ["` + ln.Addr().String() + `"]
		routes:
		  - id: ws
		    uri: lb://b`)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan string, 1)
	go func() { stopped <- g.Stop(context.Background()) }() // drain delay 0, timeout 1s
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("client got %v, want close 1001", err)
	}
	summary := <-stopped
	if got := backendSaw.Load(); got != websocket.CloseGoingAway {
		t.Fatalf("backend saw close code %d, want 1001", got)
	}
	t.Log(summary)
}

// Zero-downtime restart on one port: a second gateway binds the same port
// (SO_REUSEPORT) while the first drains under a steady stream of GET and POST
// requests over keep-alive connections. No request fails; the client sees
// Connection: close from the draining one and reconnects, to the new one.
func TestDrainUnderLoadWithReplacement(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("takes 3s")
	}
	for _, proto := range []string{"http1", "h2c"} {
		t.Run(proto, func(t *testing.T) { drainUnderLoad(t, proto) })
	}
}

func drainUnderLoad(t *testing.T, proto string) {
	backend := echoProto(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().String()
	ln.Close()
	body := `
		upstreams:
		  b:
		    endpoints: ["` + backend + `"]
		routes:
		  - id: r
		    uri: lb://b`
	start := func() *gateway.Gateway {
		g, err := gatewaytest.TryStart(body, gatewaytest.WithServer("listen: "+port), gatewaytest.WithDrainDelay(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	old := start()
	var client *http.Client
	if proto == "h2c" {
		tr := &http2.Transport{AllowHTTP: true}
		tr.DialTLS = func(network, addr string, _ *tls.Config) (net.Conn, error) { return net.Dial(network, addr) }
		client = &http.Client{Transport: tr}
	} else {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	}
	var sent, failed, closes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	for w := 0; w < 4; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := 0; ctx.Err() == nil && i < 100000; i++ {
				var req *http.Request
				if i%2 == 0 {
					req, _ = http.NewRequest("GET", "http://"+port+"/", nil)
				} else {
					req, _ = http.NewRequest("POST", "http://"+port+"/", strings.NewReader(strings.Repeat("x", 1024)))
				}
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					t.Logf("%s %v", req.Method, err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Logf("%s status %d", req.Method, resp.StatusCode)
				}
				if resp.Close {
					closes.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	next := start() // binds the same port
	defer gatewaytest.Stop(next)
	readyURL := "http://" + old.AdminAddr() + "/healthz/ready"
	signalled := time.Now()
	stopped := make(chan string, 1)
	go func() { stopped <- old.Stop(context.Background()) }()
	for {
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Since(signalled) > 100*time.Millisecond {
			t.Fatal("readiness not 503 within 100ms of the drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	summary := <-stopped
	if d := time.Since(signalled); d > 500*time.Millisecond+1500*time.Millisecond+time.Second {
		t.Fatalf("drain took %v", d)
	}
	time.Sleep(300 * time.Millisecond) // traffic on the new instance only
	cancel()
	workers.Wait()
	t.Logf("%s: %d requests, %d failed, %d saw Connection: close; %s", proto, sent.Load(), failed.Load(), closes.Load(), summary)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), sent.Load())
	}
	if proto == "http1" && closes.Load() == 0 {
		t.Fatal("no response carried Connection: close")
	}
	// The client moved to the new instance (after GOAWAY, for HTTP/2).
	resp, err := http.Get("http://" + next.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `sluice_requests_total{class="2xx",reason="",route="r",upstream="b"}`) {
		t.Fatal("the new instance served no request")
	}
}

// A request in flight when drain.delay ends, answered after the closing
// phase has begun, carries Connection: close (and no Keep-Alive hint): every
// HTTP/1.1 response whose headers are written once clients are being asked
// to close says so, not only those of requests that arrived after (issue 13,
// case 3).
func TestDrainAsksToCloseOnResponsesWrittenAfterClosingBegan(t *testing.T) {
	be := newCountingBackend(t, "be")
	g, err := gatewaytest.TryStart(`
		routes:
		  - id: r
		    uri: http://`+be.addr(),
		gatewaytest.WithServer("idle_timeout: 30s"), gatewaytest.WithDrainDelay(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /slow?sleep=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- result{resp, err}
	}()
	if !gatewaytest.Eventually(5*time.Second, func() bool { return be.inflight.Load() == 1 }) {
		t.Fatal("the request did not reach the backend")
	}
	stopped := make(chan string, 1)
	go func() { stopped <- g.Stop(context.Background()) }()
	r := <-done
	<-stopped
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.resp.StatusCode)
	}
	if !r.resp.Close { // net/http reads Connection: close into Close and removes the header
		t.Fatalf("response written in the closing phase does not ask to close: %v", r.resp.Header)
	}
	if ka := r.resp.Header.Get("Keep-Alive"); ka != "" {
		t.Fatalf("response asking to close also has Keep-Alive: %q", ka)
	}
}
