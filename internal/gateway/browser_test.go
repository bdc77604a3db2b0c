package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// chromiumPath returns Debian's chromium, or skips the test without it;
// under CI (CI=true), which installs it, a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (apt-get install -y chromium); CI must run the browser test")
	}
	t.Skip("chromium not installed (apt-get install -y chromium)")
	return ""
}

// browserBackend serves a page, an event stream whose second event is
// sent only once the test saw the browser receive the first, and a
// WebSocket echo, over HTTP/1.1.
func browserBackend(t *testing.T, next <-chan struct{}) string {
	t.Helper()
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>sluice</title><p>through sluice</p>")
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		fmt.Fprint(w, "data: two\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// waitJS evaluates expr until it is true, for at most 15 s.
func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
	}
	t.Fatalf("%s: %s never became true", what, expr)
}

// Headless Chromium through a TLS listener: the page comes over HTTP/2
// (ALPN), a Server-Sent Event reaches the browser before the backend sends
// the next one (nothing held back), and a WebSocket (over HTTP/1.1) open
// when the gateway drains closes cleanly with 1001 (one close frame,
// wasClean).
func TestBrowserThroughGatewayTLSSSEAndWebSocketDrain(t *testing.T) {
	chromium := chromiumPath(t)
	next := make(chan struct{})
	backend := browserBackend(t, next)
	var log gatewaytest.SafeBuffer
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "api", 1, "api.example.com")
	g, err := gatewaytest.TryStart(`
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: all
		    uri: lb://b`, gatewaytest.WithServer(`
		tls:
		  certificates: [{cert_file: "`+certFile+`", key_file: "`+keyFile+`"}]`), gatewaytest.WithLog(&log))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			gatewaytest.Stop(g)
		}
	}()
	_, port, _ := net.SplitHostPort(g.Addr())
	origin := "https://api.example.com:" + port

	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// The test's own certificate, trusted by its key; its name resolves to loopback.
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("host-resolver-rules", "MAP api.example.com 127.0.0.1"),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil {
		t.Fatal(err)
	}
	if proto != "h2" {
		t.Errorf("page came over %q, want h2 (ALPN)", proto)
	}

	// SSE: the second event exists only after the browser got the first.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`
		window.sse = [];
		window.es = new EventSource("/events");
		window.es.onmessage = e => { window.sse.push(e.data); if (e.data === "two") window.es.close(); };
		true`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.sse.length === 1 && window.sse[0] === "one"`, "first event delivered before the backend sends the second")
	close(next)
	waitJS(t, ctx, `window.sse.join(",") === "one,two"`, "second event delivered")

	// WebSocket, then the drain.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`
		window.wsState = {msgs: [], close: null};
		window.ws = new WebSocket("wss://" + location.host + "/ws");
		window.ws.onopen = () => window.ws.send("ping");
		window.ws.onmessage = e => window.wsState.msgs.push(e.data);
		window.ws.onclose = e => window.wsState.close = {code: e.code, clean: e.wasClean, reason: e.reason};
		true`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `window.wsState.msgs[0] === "ping"`, "WebSocket echo")
	done := make(chan string, 1)
	stopped = true
	go func() { done <- g.Stop(context.Background()) }() // drain delay 0, timeout 1s
	waitJS(t, ctx, `window.wsState.close !== null`, "WebSocket closed by the drain")
	type closeEvent struct {
		Code   int    `json:"code"`
		Clean  bool   `json:"clean"`
		Reason string `json:"reason"`
	}
	closed, err := chromedp.Run(ctx, chromedp.Evaluate[closeEvent](`window.wsState.close`))
	if err != nil {
		t.Fatal(err)
	}
	if closed.Code != 1001 || !closed.Clean {
		t.Errorf("onclose code %d wasClean %v (reason %q), want 1001 and a clean close", closed.Code, closed.Clean, closed.Reason)
	}
	t.Log(<-done)
	// Extended CONNECT (RFC 8441) is off, so the WebSocket came on an
	// HTTP/1.1 connection of its own (docs/grpc.md).
	upgrades := 0
	for _, l := range accessLines(&log) {
		if l["status"] == float64(http.StatusSwitchingProtocols) {
			upgrades++
			if l["protocol"] != "HTTP/1.1" {
				t.Errorf("WebSocket over %v, want HTTP/1.1", l["protocol"])
			}
		}
	}
	if upgrades != 1 {
		t.Errorf("%d access lines with status 101, want the WebSocket's one", upgrades)
	}
}
