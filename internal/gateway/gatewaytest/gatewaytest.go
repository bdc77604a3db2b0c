// Package gatewaytest runs a real gateway and real backends on loopback for
// integration tests, the way net/http/httptest runs a server.
//
//	be := gatewaytest.NewEcho(t, "api")
//	g := gatewaytest.Start(t, `
//		routes:
//		  - id: api
//		    uri: http://`+be.Addr()+`
//		    predicates: [Path=/api/**]
//		`)
//	resp, body := gatewaytest.Get(t, g, "/api/x")
//	seen := gatewaytest.DecodeSeen(t, body) // what the backend received
//
// Everything started here is stopped by t.Cleanup.
package gatewaytest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
)

// An Option changes how Start builds the gateway.
type Option func(*options)

type options struct {
	server     string
	admin      string
	logLines   string
	log        io.Writer
	drainDelay time.Duration
}

// WithAdmin adds YAML lines to the admin block, e.g. "ready_saturation_threshold: 0.9".
func WithAdmin(lines string) Option { return func(o *options) { o.admin = lines } }

// WithLogConfig adds YAML lines to the log block, e.g. "access_sample_2xx: 0".
func WithLogConfig(lines string) Option { return func(o *options) { o.logLines = lines } }

// WithServer adds YAML lines to the server block, e.g. "trusted_proxies: [127.0.0.1/32]".
func WithServer(lines string) Option { return func(o *options) { o.server = lines } }

// WithDrainDelay sets drain.delay (default 0s). The gateway is still
// stopped at once at the end of the test.
func WithDrainDelay(d time.Duration) Option { return func(o *options) { o.drainDelay = d } }

// WithLog sends the gateway's log, as JSON lines at debug level, to w.
func WithLog(w io.Writer) Option { return func(o *options) { o.log = w } }

// Start parses body (upstreams, routes, default_filters; no server, admin,
// log or drain block) under a header that listens on 127.0.0.1:0 for both
// the proxy and the admin port, with access logging on and a drain without
// delays, and starts a gateway. The gateway stops at the end of the test.
func Start(t testing.TB, body string, opts ...Option) *gateway.Gateway {
	t.Helper()
	g, err := TryStart(body, opts...)
	if err != nil {
		t.Fatalf("starting gateway: %v", err)
	}
	t.Cleanup(func() { Stop(g) })
	return g
}

// TryStart is Start without the testing.TB: the caller stops the gateway.
func TryStart(body string, opts ...Option) (*gateway.Gateway, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	yaml := Header(o.server, o.drainDelay) + Dedent(body)
	yaml = strings.Replace(yaml, "admin:\n  listen: 127.0.0.1:0\n", "admin:\n  listen: 127.0.0.1:0\n"+indent(o.admin), 1)
	yaml = strings.Replace(yaml, "log:\n  access_log: true\n", "log:\n  access_log: true\n"+indent(o.logLines), 1)
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		return nil, err
	}
	w := o.log
	if w == nil {
		w = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return gateway.StartConfig("test.yaml", cfg, log)
}

// Header is the YAML header Start puts before the test's body.
func Header(serverLines string, drainDelay time.Duration) string {
	var b strings.Builder
	b.WriteString("server:\n")
	if !strings.Contains(serverLines, "listen:") {
		b.WriteString("  listen: 127.0.0.1:0\n")
	}
	for l := range strings.SplitSeq(strings.TrimSpace(Dedent(serverLines)), "\n") {
		if l != "" {
			b.WriteString("  " + l + "\n")
		}
	}
	b.WriteString("admin:\n  listen: 127.0.0.1:0\n")
	b.WriteString("log:\n  access_log: true\n")
	b.WriteString("drain:\n  delay: " + drainDelay.String() + "\n  timeout: 1s\n")
	return b.String()
}

// indent indents each non-empty line of lines by two spaces.
func indent(lines string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(strings.TrimSpace(Dedent(lines)), "\n") {
		if l != "" {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

// Stop stops g at once, skipping the drain's waits.
func Stop(g *gateway.Gateway) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Stop(ctx)
}

// Dedent removes the indentation of the first non-empty line from every
// line of s, so configs can be written indented in Go source.
func Dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := ""
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			break
		}
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}

// URL returns the gateway's URL for path ("/x?y").
func URL(g *gateway.Gateway, path string) string { return "http://" + g.Addr() + path }

// Client is an HTTP client that never reuses a connection across tests and
// gives up after 10 seconds.
func Client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Do sends req and returns the response with its body read.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// Get sends GET path to g with a fresh client.
func Get(t testing.TB, g *gateway.Gateway, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, URL(g, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	return Do(t, Client(t), req)
}

// Raw writes request verbatim (CRLF line ends are added) on a new
// connection to addr and reads one response. Use it for request lines that
// net/http's client would clean or refuse.
func Raw(t testing.TB, addr, request string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	request = strings.ReplaceAll(strings.TrimLeft(Dedent(request), "\n"), "\n", "\r\n")
	if !strings.HasSuffix(request, "\r\n\r\n") {
		request = strings.TrimRight(request, "\r\n") + "\r\n\r\n"
	}
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, body
}

// Seen is what an Echo backend saw of one request.
type Seen struct {
	Method     string              `json:"method"`
	URI        string              `json:"uri"` // the request target as received
	Path       string              `json:"path"`
	Host       string              `json:"host"`
	Header     map[string][]string `json:"header"`
	Trailer    map[string][]string `json:"trailer"`
	TE         []string            `json:"transfer_encoding"`
	Length     int64               `json:"content_length"` // as declared; -1 unknown
	BodyLen    int64               `json:"body_len"`
	BodySHA256 string              `json:"body_sha256"`
}

// Echo is a backend that answers every request with a JSON Seen, and
// remembers the requests.
type Echo struct {
	*httptest.Server
	Name string

	mu   sync.Mutex
	seen []Seen
	hits atomic.Int64
}

// NewEcho starts an Echo backend that also sets X-Backend: name on its answers.
func NewEcho(t testing.TB, name string) *Echo {
	e := &Echo{Name: name}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

// Addr is the backend's host:port.
func (e *Echo) Addr() string { return e.Listener.Addr().String() }

// Hits counts the requests the backend answered.
func (e *Echo) Hits() int64 { return e.hits.Load() }

// Seen returns the requests seen so far.
func (e *Echo) Seen() []Seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Seen(nil), e.seen...)
}

func (e *Echo) serve(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, _ := io.Copy(h, r.Body)
	s := Seen{
		Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Host: r.Host,
		Header: r.Header, Trailer: r.Trailer, TE: r.TransferEncoding, Length: r.ContentLength,
		BodyLen: n, BodySHA256: hex.EncodeToString(h.Sum(nil)),
	}
	e.mu.Lock()
	e.seen = append(e.seen, s)
	e.mu.Unlock()
	e.hits.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", e.Name)
	json.NewEncoder(w).Encode(s)
}

// DecodeSeen parses an Echo answer.
func DecodeSeen(t testing.TB, body []byte) Seen {
	t.Helper()
	var s Seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("not an echo answer: %v: %q", err, body)
	}
	return s
}

// SafeBuffer is a bytes buffer safe for concurrent writers and readers (a log sink).
type SafeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// JSONLines returns the lines written so far that decode as JSON objects.
func (s *SafeBuffer) JSONLines() []map[string]any {
	var out []map[string]any
	for l := range strings.SplitSeq(s.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Eventually polls cond every 5ms until it is true or timeout passes, and
// reports whether it became true.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ClosedAddr returns a loopback address where nothing listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// RawBackend serves each accepted connection with handle on its own
// goroutine until the test ends; handle owns the connection.
func RawBackend(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
