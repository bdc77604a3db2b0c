package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

// Three proxy listeners in one gateway, serving the same route: the primary
// (plain HTTP/1.1 only, idle 1s, at most 2 connections), a TLS one (HTTP/2
// by ALPN, idle 3s, the server's cap of 2 of its own) and an h2c one (idle
// 2s, no cap). Each applies its own settings, reports its own metrics, and
// one drain stops them all.
func TestSeveralListeners(t *testing.T) {
	testlock.Realtime(t) // idle timeouts are measured
	dir := t.TempDir()
	certFile, keyFile, certX := writeCert(t, dir, "api", 1, "api.example.com")
	backend := newCountingBackend(t, "b")
	g, err := gatewaytest.TryStart(`
		upstreams:
		  b:
		    endpoints: ["`+backend.addr()+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`
		listen: 127.0.0.1:0
		idle_timeout: 1s
		max_connections: 2
		h2c: false
		listeners:
		  - name: tls
		    listen: 127.0.0.1:0
		    idle_timeout: 3s
		    tls: {certificates: [{cert_file: "`+certFile+`", key_file: "`+keyFile+`"}]}
		  - {name: h2c, listen: 127.0.0.1:0, h2c: true, idle_timeout: 2s, max_connections: 0}`))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			gatewaytest.Stop(g)
		}
	})
	const primary = "127.0.0.1:0" // the primary's label: server.listen as written
	plainAddr, tlsAddr, h2cAddr := g.Addr(), g.ListenerAddr("tls"), g.ListenerAddr("h2c")
	if got := g.Addrs(); !slices.Equal(got, []string{plainAddr, tlsAddr, h2cAddr}) || g.ListenerAddr(primary) != plainAddr ||
		tlsAddr == "" || h2cAddr == "" || g.ListenerAddr("nope") != "" {
		t.Fatalf("Addrs %v; tls %q, h2c %q", got, tlsAddr, h2cAddr)
	}
	pool := x509.NewCertPool()
	pool.AddCert(certX)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "api.example.com"}
	h1Client := func() *http.Client { // HTTP/1.1, or HTTP/2 by ALPN under TLS
		tr := &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	h2Client := func(plain bool) *http.Client {
		tr := &http2.Transport{TLSClientConfig: tlsConf.Clone()}
		if plain {
			tr.AllowHTTP = true
			tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client, url string) (*http.Response, error) {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		c.CloseIdleConnections() // the primary has room for two
		return resp, err
	}
	value := func(series string) float64 { return metricValue(t, g, series) }
	primaryEmpty := func() {
		t.Helper()
		if !gatewaytest.Eventually(2*time.Second, func() bool {
			return value(`sluice_downstream_connections{listener="`+primary+`",state="open"}`) == 0
		}) {
			t.Fatal("the primary's connections were not closed")
		}
	}

	// The same route on every listener, each with its protocols.
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		proto  int
	}{
		{"primary, HTTP/1.1", h1Client(), "http://" + plainAddr + "/x", 1},
		{"tls, HTTP/2 by ALPN", h1Client(), "https://" + tlsAddr + "/x", 2},
		{"h2c, prior knowledge", h2Client(true), "http://" + h2cAddr + "/x", 2},
	} {
		resp, err := get(tc.client, tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != tc.proto || resp.Header.Get("X-Backend") != "b" {
			t.Fatalf("%s: status %d, proto %d, backend %q", tc.name, resp.StatusCode, resp.ProtoMajor, resp.Header.Get("X-Backend"))
		}
	}
	// h2c is off on the primary (its own h2c: false).
	if _, err := get(h2Client(true), "http://"+plainAddr+"/x"); err == nil {
		t.Fatal("h2c prior knowledge served on the primary listener, where h2c is off")
	}

	primaryEmpty()

	// One HTTP/1.1 request on each listener: its own Keep-Alive hint, then
	// its own idle timeout closes the connection.
	type idleConn struct {
		name string
		idle time.Duration
		c    net.Conn
		br   *bufio.Reader
	}
	dialH1 := func(addr string, useTLS bool) net.Conn {
		if useTLS {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "api.example.com", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var idles []*idleConn
	for _, l := range []struct {
		name   string
		addr   string
		tls    bool
		idle   time.Duration
		header string
	}{
		{"primary", plainAddr, false, time.Second, "timeout=1"},
		{"h2c", h2cAddr, false, 2 * time.Second, "timeout=2"},
		{"tls", tlsAddr, true, 3 * time.Second, "timeout=3"},
	} {
		c := dialH1(l.addr, l.tls)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ka := resp.Header.Get("Keep-Alive"); ka != l.header {
			t.Fatalf("%s: Keep-Alive %q, want %q", l.name, ka, l.header)
		}
		idles = append(idles, &idleConn{l.name, l.idle, c, br})
	}
	start := time.Now()
	closedAfter := make([]time.Duration, len(idles))
	var wg sync.WaitGroup
	for i, ic := range idles {
		wg.Go(func() {
			ic.c.SetReadDeadline(time.Now().Add(6 * time.Second))
			if _, err := ic.br.ReadByte(); err == nil {
				t.Errorf("%s: data on an idle connection", ic.name)
			}
			closedAfter[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, ic := range idles {
		if d := closedAfter[i]; d < ic.idle-200*time.Millisecond || d > ic.idle+1500*time.Millisecond {
			t.Errorf("%s: idle connection closed after %v, want about %v", ic.name, d, ic.idle)
		}
	}
	if !(closedAfter[0] < closedAfter[1] && closedAfter[1] < closedAfter[2]) {
		t.Errorf("idle closes %v, want the primary's first, then h2c's, then tls's", closedAfter)
	}

	// max_connections: the primary's two places taken, a third connection
	// there is refused; the h2c listener (no cap) and the TLS listener (its
	// own cap of 2) are not affected.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		held = append(held, dialH1(plainAddr, false))
	}
	time.Sleep(50 * time.Millisecond)
	if over, err := net.Dial("tcp", plainAddr); err == nil { // else refused already
		over.SetReadDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(over, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := over.Read(make([]byte, 1)); err == nil {
			t.Fatal("a third connection to the primary listener (max_connections: 2) was served")
		}
		over.Close()
	}
	for i := range 5 {
		c := dialH1(h2cAddr, false)
		held = append(held, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("h2c listener, connection %d, while the primary is full: %v", i+1, err)
		}
		resp.Body.Close()
	}
	if _, err := get(h1Client(), "https://"+tlsAddr+"/x"); err != nil {
		t.Fatalf("tls listener while the primary is full: %v", err)
	}
	// A client not speaking TLS to the TLS listener.
	if c, err := net.Dial("tcp", tlsAddr); err == nil {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 512))
		c.Close()
	}

	// Every downstream metric, per listener.
	if !gatewaytest.Eventually(2*time.Second, func() bool {
		return value(`sluice_downstream_tls_handshake_errors_total{listener="tls"}`) >= 1 &&
			value(`sluice_downstream_connections{listener="h2c",state="open"}`) == 5
	}) {
		t.Fatalf("metrics:\n%s", grepLines(adminBody(t, g), "sluice_downstream_"))
	}
	for series, ok := range map[string]func(float64) bool{
		`sluice_downstream_connections_refused_total{listener="` + primary + `"}`:          func(v float64) bool { return v >= 1 },
		`sluice_downstream_connections_refused_total{listener="tls"}`:                      func(v float64) bool { return v == 0 },
		`sluice_downstream_connections_by_protocol{listener="h2c",protocol="http/1.1"}`:    func(v float64) bool { return v == 5 },
		`sluice_downstream_connections_refused_total{listener="h2c"}`:                      func(v float64) bool { return v == 0 },
		`sluice_downstream_tls_handshake_errors_total{listener="` + primary + `"}`:         func(v float64) bool { return v == 0 },
		`sluice_downstream_connections{listener="` + primary + `",state="open"}`:           func(v float64) bool { return v == 2 },
		`sluice_downstream_connections_accepted_total{listener="tls"}`:                     func(v float64) bool { return v >= 4 },
		`sluice_downstream_connections_closed_total{listener="h2c",reason="idle_timeout"}`: func(v float64) bool { return v >= 1 },
		`sluice_downstream_requests_total{listener="` + primary + `",protocol="HTTP/1.1"}`: func(v float64) bool { return v == 2 },
		`sluice_downstream_requests_total{listener="tls",protocol="HTTP/2.0"}`:             func(v float64) bool { return v == 2 },
		`sluice_downstream_requests_total{listener="tls",protocol="HTTP/1.1"}`:             func(v float64) bool { return v == 1 },
		`sluice_downstream_requests_total{listener="h2c",protocol="HTTP/2.0"}`:             func(v float64) bool { return v == 1 },
		`sluice_downstream_requests_total{listener="h2c",protocol="HTTP/1.1"}`:             func(v float64) bool { return v == 6 },
	} {
		if v := value(series); !ok(v) {
			t.Errorf("%s = %v", series, v)
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	primaryEmpty()

	// The drain: a slow request in flight on each listener finishes, every
	// listener stops, and the summary counts the connections of all.
	type result struct {
		name   string
		status int
		err    error
	}
	results := make(chan result, 3)
	for _, r := range []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"primary", h1Client(), "http://" + plainAddr + "/slow?sleep=1500"},
		{"tls", h1Client(), "https://" + tlsAddr + "/slow?sleep=1500"},
		{"h2c", h2Client(true), "http://" + h2cAddr + "/slow?sleep=1500"},
	} {
		go func() {
			resp, err := get(r.client, r.url)
			res := result{name: r.name, err: err}
			if err == nil {
				res.status = resp.StatusCode
			}
			results <- res
		}()
	}
	if !gatewaytest.Eventually(3*time.Second, func() bool { return backend.inflight.Load() == 3 }) {
		t.Fatalf("%d slow requests in flight, want 3", backend.inflight.Load())
	}
	closedBefore := map[string]float64{}
	for _, m := range regexp.MustCompile(`(?m)^sluice_downstream_connections_closed_total\{listener="([^"]+)",reason="[a-z_]+"\} (\S+)$`).
		FindAllStringSubmatch(adminBody(t, g), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		closedBefore[m[1]] += v
	}
	if len(closedBefore) != 3 || closedBefore["tls"] == 0 || closedBefore["h2c"] == 0 {
		t.Fatalf("connections closed before the drain, by listener: %v", closedBefore)
	}
	stopped = true
	summary := g.Stop(context.Background()) // delay 0, timeout 1s
	t.Log(summary)
	for range 3 {
		if r := <-results; r.err != nil || r.status != 200 {
			t.Errorf("%s: slow request during the drain: %d %v", r.name, r.status, r.err)
		}
	}
	m := regexp.MustCompile(`(\d+) connections accepted during drain, (\d+) closed in all`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary %q", summary)
	}
	closed, _ := strconv.ParseFloat(m[2], 64)
	if sum := closedBefore[primary] + closedBefore["tls"] + closedBefore["h2c"]; closed < sum {
		t.Errorf("summary: %v closed in all, but %v (%v) were closed on the listeners before the drain", closed, sum, closedBefore)
	}
	for _, addr := range []string{plainAddr, tlsAddr, h2cAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after the drain", addr)
		}
	}
}

// A listener that cannot be bound fails the start, naming it, and the
// listeners bound before it are released; so does a failing admin port and
// a listener's TLS certificate that cannot be loaded.
func TestListenerStartFailureReleasesBound(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: the gateway cannot bind it
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	occupied := taken.Addr().String()
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "api", 1, "api.example.com")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		yaml func(a, b string) string
		// before is run after Parse, before the start
		before func()
		want   string
	}{
		{
			name: "second listener's address taken",
			yaml: func(a, b string) string {
				return `server: {listen: "` + a + `", listeners: [{name: x, listen: "` + b + `"}, {name: y, listen: "` + occupied + `"}]}`
			},
			want: "server.listeners[1].listen " + occupied + ": ",
		},
		{
			name: "primary's address taken",
			yaml: func(a, b string) string {
				return `server: {listen: "` + occupied + `", listeners: [{name: x, listen: "` + a + `"}]}`
			},
			want: "server.listen " + occupied + ": ",
		},
		{
			name: "admin's address taken",
			yaml: func(a, b string) string {
				return `server: {listen: "` + a + `", listeners: [{name: x, listen: "` + b + `"}]}` + "\nadmin: {listen: \"" + occupied + "\"}"
			},
			want: "admin.listen " + occupied + ": ",
		},
		{
			name: "listener's certificate gone",
			yaml: func(a, b string) string {
				return `server: {listen: "` + a + `", listeners: [{name: x, listen: "` + b + `", tls: {certificates: [{cert_file: "` +
					certFile + `", key_file: "` + keyFile + `"}]}}]}`
			},
			before: func() { os.Remove(certFile) },
			want:   "server.listeners[0].tls: tls certificate " + certFile + ": ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := gatewaytest.ClosedAddr(t), gatewaytest.ClosedAddr(t)
			cfg, err := config.Parse("test.yaml", []byte(tc.yaml(a, b)+"\nreload: {watch: false}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before()
			}
			g, err := gateway.StartConfig(filepath.Join(dir, "none.yaml"), cfg, log)
			if err == nil {
				gatewaytest.Stop(g)
				t.Fatal("started")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to start with %q", err, tc.want)
			}
			for _, addr := range []string{a, b} {
				if addr == occupied {
					continue
				}
				ln, err := net.Listen("tcp", addr) // fails if the gateway still holds it
				if err != nil {
					t.Fatalf("%s not released: %v", addr, err)
				}
				ln.Close()
			}
		})
	}
}

// Listeners are bound at start: a reload that changes them is refused,
// naming what needs a restart, and changes nothing (a reload that kept part
// of the old config while reporting success would hide it); the start log
// lists them all.
func TestReloadListenerChangesNeedRestart(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(listeners, route string) {
		t.Helper()
		data := "server:\n  listen: 127.0.0.1:0\n  listeners:\n" + listeners +
			"admin: {listen: 127.0.0.1:0}\nreload: {watch: false}\nroutes:\n  - {id: r, uri: \"http://" + be.Addr() + "\", predicates: [\"Path=" + route + "\"]}\n"
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("    - {name: extra, listen: 127.0.0.1:0}\n", "/a/**")
	var logs gatewaytest.SafeBuffer
	g, err := gateway.Start(file, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer gatewaytest.Stop(g)
	var startedWith []string
	for _, l := range logs.JSONLines() {
		if l["msg"] == "sluice started" {
			for _, li := range l["listeners"].([]any) {
				m := li.(map[string]any)
				startedWith = append(startedWith, fmt.Sprint(m["name"], " ", m["addr"], " ", m["tls"]))
			}
		}
	}
	if want := []string{"127.0.0.1:0 " + g.Addrs()[0] + " false", "extra " + g.Addrs()[1] + " false"}; !slices.Equal(startedWith, want) {
		t.Fatalf("start log lists %q, want %q", startedWith, want)
	}
	// Only a route changes: applied.
	write("    - {name: extra, listen: 127.0.0.1:0}\n", "/b/**")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := gatewaytest.Get(t, g, "/b/x"); resp.StatusCode != 200 {
		t.Fatalf("the reloaded route: %d", resp.StatusCode)
	}
	// A changed listener, a new one, and a route: refused, the route too.
	write("    - {name: extra, listen: 127.0.0.1:0, idle_timeout: 5s}\n    - {name: more, listen: 127.0.0.1:0}\n", "/c/**")
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), "a restart is needed to change server.listeners") {
		t.Fatalf("reload changing listeners: %v", err)
	}
	if resp, _ := gatewaytest.Get(t, g, "/b/x"); resp.StatusCode != 200 {
		t.Fatalf("the route in force before the refused reload: %d", resp.StatusCode)
	}
	if len(g.Addrs()) != 2 || g.ListenerAddr("more") != "" {
		t.Fatalf("listeners after the reload: %v", g.Addrs())
	}
	// The primary moved and extra is gone.
	os.WriteFile(file, []byte("server: {listen: \"127.0.0.1:1\"}\nadmin: {listen: 127.0.0.1:0}\nreload: {watch: false}\nroutes: []\n"), 0o600)
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), "server.listen, ") || !strings.Contains(err.Error(), "server.listeners") {
		t.Fatalf("reload moving the primary and removing extra: %v", err)
	}
}
