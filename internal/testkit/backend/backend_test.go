package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The process tests re-execute this binary as a backend.
	if os.Getenv("SLUICE_BACKEND_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func start(t *testing.T, opts Options) *Backend {
	t.Helper()
	b, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// rawConn is one HTTP/1.1 client conn, so tests see exactly what the
// backend does to it.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(method, target, id, body string) {
	rc.t.Helper()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s",
		method, target, id, len(body), body)
	if _, err := io.WriteString(rc.c, req); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) read() (*http.Response, string, error) {
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func (rc *rawConn) do(method, target, id, body string) (*http.Response, string) {
	rc.t.Helper()
	rc.send(method, target, id, body)
	resp, b, err := rc.read()
	if err != nil {
		rc.t.Fatal(err)
	}
	return resp, b
}

// waitEOF reports how long the backend took to close the conn.
func (rc *rawConn) waitEOF() (time.Duration, error) {
	start := time.Now()
	_, err := rc.br.ReadByte()
	return time.Since(start), err
}

func TestBodies(t *testing.T) {
	b := start(t, Options{Name: "b1"})
	c := dial(t, b.Addr())
	tests := []struct {
		desc, method, target, body, want string
	}{
		{desc: "get", method: "GET", target: "/a/b", want: "backend=b1 path=/a/b"},
		{desc: "post", method: "POST", target: "/p", body: strings.Repeat("y", 1024), want: "len=1024"},
		{desc: "bytes", method: "GET", target: "/?bytes=5", want: "xxxxx"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := c.do(tc.method, tc.target, tc.desc, tc.body)
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
			if got := resp.Header.Get("X-Backend"); got != "b1" {
				t.Errorf("X-Backend = %q", got)
			}
			if resp.Header.Get("Keep-Alive") != "" {
				t.Errorf("unexpected Keep-Alive header %q", resp.Header.Get("Keep-Alive"))
			}
		})
	}
}

func TestIdleTimeoutIsExact(t *testing.T) {
	const idle = 200 * time.Millisecond
	b := start(t, Options{IdleTimeout: idle})
	c := dial(t, b.Addr())
	c.do("GET", "/", "1", "")
	d, err := c.waitEOF()
	if err != io.EOF {
		t.Fatalf("got %v, want EOF", err)
	}
	if d < idle-10*time.Millisecond || d > idle+100*time.Millisecond {
		t.Fatalf("closed after %v, want about %v", d, idle)
	}
}

func TestKeepAliveHeader(t *testing.T) {
	b := start(t, Options{KeepAliveHeader: "timeout=5, max=100"})
	c := dial(t, b.Addr())
	for range 2 {
		resp, _ := c.do("GET", "/", "1", "")
		if got := resp.Header.Get("Keep-Alive"); got != "timeout=5, max=100" {
			t.Fatalf("Keep-Alive = %q", got)
		}
	}
}

func TestMaxRequestsPerConn(t *testing.T) {
	b := start(t, Options{MaxRequestsPerConn: 3})
	c := dial(t, b.Addr())
	for i := 1; i <= 3; i++ {
		resp, _ := c.do("GET", "/", fmt.Sprint(i), "")
		if closing := resp.Close; closing != (i == 3) {
			t.Fatalf("request %d: Connection: close = %v", i, closing)
		}
	}
	if _, err := c.waitEOF(); err != io.EOF {
		t.Fatalf("after the last request: %v, want EOF", err)
	}
	// A new conn starts counting again.
	c2 := dial(t, b.Addr())
	if resp, _ := c2.do("GET", "/", "4", ""); resp.Close {
		t.Fatal("first request on a new conn got Connection: close")
	}
}

func TestLatency(t *testing.T) {
	b := start(t, Options{Latency: 50 * time.Millisecond})
	c := dial(t, b.Addr())
	for _, tc := range []struct {
		desc   string
		set    time.Duration
		target string
		want   time.Duration
	}{
		{desc: "initial", set: 50 * time.Millisecond, target: "/", want: 50 * time.Millisecond},
		{desc: "changed", set: 120 * time.Millisecond, target: "/", want: 120 * time.Millisecond},
		{desc: "sleep param", set: 0, target: "/?sleep=80ms", want: 80 * time.Millisecond},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			b.SetLatency(tc.set)
			start := time.Now()
			c.do("GET", tc.target, "1", "")
			if d := time.Since(start); d < tc.want || d > tc.want+200*time.Millisecond {
				t.Fatalf("took %v, want about %v", d, tc.want)
			}
		})
	}
}

func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec")
	b := start(t, Options{Name: "b1", RecordFile: path})
	c := dial(t, b.Addr())
	c.do("POST", "/", "p1", "body")
	c.do("GET", "/", "g1", "")
	c.send("GET", "/", "", "") // no id: not recorded
	c.read()
	want := []Record{{Backend: "b1", Method: "POST", ID: "p1"}, {Backend: "b1", Method: "GET", ID: "g1"}}
	check := func(desc string, got []Record) {
		if len(got) != len(want) {
			t.Fatalf("%s: got %d records, want %d", desc, len(got), len(want))
		}
		for i := range want {
			g := got[i]
			if g.Backend != want[i].Backend || g.Method != want[i].Method || g.ID != want[i].ID || g.At.IsZero() {
				t.Errorf("%s: record %d = %+v, want %+v", desc, i, g, want[i])
			}
		}
	}
	check("memory", b.Processed())
	fromFile, err := ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	check("file", fromFile)
}

func TestRecordedBeforeResponse(t *testing.T) {
	b := start(t, Options{Latency: 300 * time.Millisecond})
	c := dial(t, b.Addr())
	c.send("POST", "/", "p1", "body")
	time.Sleep(100 * time.Millisecond)
	if n := len(b.Processed()); n != 1 {
		t.Fatalf("%d records while the response is pending, want 1", n)
	}
}

func TestH2C(t *testing.T) {
	b := start(t, Options{H2C: true, MaxConcurrentStreams: 10})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + b.Addr() + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasSuffix(string(body), "path=/h2") {
		t.Fatalf("got %s %q", resp.Proto, body)
	}
	// HTTP/1.1 still works on the same port.
	c := dial(t, b.Addr())
	if resp, _ := c.do("GET", "/", "1", ""); resp.ProtoMajor != 1 {
		t.Fatalf("got %s", resp.Proto)
	}
}

func TestShutdownStyles(t *testing.T) {
	tests := []struct {
		desc  string
		style ShutdownStyle
		// what the in-flight request and the idle conn see
		inFlightOK bool
		wantReset  bool
	}{
		{desc: "graceful", style: Graceful, inFlightOK: true},
		{desc: "abrupt", style: Abrupt},
		{desc: "reset", style: Reset, wantReset: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			b := start(t, Options{})
			idle := dial(t, b.Addr())
			idle.do("GET", "/", "warm", "")
			busy := dial(t, b.Addr())
			busy.send("POST", "/?sleep=300ms", "p1", "body")
			time.Sleep(50 * time.Millisecond)

			done := make(chan error, 1)
			go func() { done <- b.Shutdown(context.Background(), tc.style) }()

			// The idle conn is closed at once, in every style.
			d, err := idle.waitEOF()
			if tc.wantReset {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("idle conn: %v, want ECONNRESET", err)
				}
			} else if err != io.EOF {
				t.Fatalf("idle conn: %v, want EOF", err)
			}
			if d > 100*time.Millisecond {
				t.Errorf("idle conn closed after %v, want at once", d)
			}
			// New connects are refused while shutting down.
			if c, err := net.Dial("tcp", b.Addr()); err == nil {
				c.Close()
				t.Error("dial during shutdown succeeded")
			}
			resp, body, err := busy.read()
			if tc.inFlightOK {
				if err != nil || resp.StatusCode != 200 || body != "len=4" {
					t.Fatalf("in-flight request: %v %q", err, body)
				}
			} else if err == nil {
				t.Fatalf("in-flight request answered %d, want an error", resp.StatusCode)
			} else if tc.wantReset && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("in-flight request: %v, want ECONNRESET", err)
			}
			if err := <-done; err != nil && tc.style == Graceful {
				t.Fatal(err)
			}
		})
	}
}

// A request that has reached the backend's socket but that the server has
// not read yet when the backend exits is recorded as dropped, and the wire
// is what a dying process leaves: the unread bytes make the kernel answer
// the close with an RST. The second, pipelined request waits in the receive
// buffer (net/http reads at most one byte ahead) while the first is handled.
func TestAbruptExitRecordsRequestWaitingUnread(t *testing.T) {
	for _, style := range []ShutdownStyle{Abrupt, Reset} {
		t.Run(style.String(), func(t *testing.T) {
			b := start(t, Options{Name: "b1"})
			c := dial(t, b.Addr())
			c.send("POST", "/?sleep=5s", "p1", "body")
			time.Sleep(100 * time.Millisecond) // p1 is being handled
			c.send("POST", "/", "p2", "body")
			time.Sleep(100 * time.Millisecond) // p2 waits in the socket
			if err := b.Shutdown(context.Background(), style); err != nil {
				t.Fatal(err)
			}
			if _, err := c.waitEOF(); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client conn: %v, want ECONNRESET (unread data at close)", err)
			}
			got := map[string]bool{}
			for _, r := range b.Processed() {
				got[r.ID] = r.Dropped
			}
			if dropped, ok := got["p1"]; !ok || dropped {
				t.Errorf("p1 (handled): records %v, want processed", got)
			}
			if dropped, ok := got["p2"]; !ok || !dropped {
				t.Errorf("p2 (waiting unread at the exit): records %v, want dropped", got)
			}
		})
	}
}

func TestRestartSameAddress(t *testing.T) {
	b := start(t, Options{Name: "b1"})
	addr := b.Addr()
	old := dial(t, addr)
	old.do("POST", "/", "p1", "x")
	if err := b.Restart(Abrupt, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != addr {
		t.Fatalf("address changed to %s", b.Addr())
	}
	if _, err := old.waitEOF(); err != io.EOF {
		t.Fatalf("old conn: %v, want EOF", err)
	}
	c := dial(t, addr)
	c.do("POST", "/", "p2", "x")
	if n := len(b.Processed()); n != 2 {
		t.Fatalf("%d records, want 2 across the restart", n)
	}
}

func TestMainProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, tc := range []struct {
		desc, style string
	}{
		{desc: "graceful", style: "graceful"},
		{desc: "reset", style: "reset"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec")
			cmd := exec.Command(os.Args[0], "-name", "p1", "-record", rec, "-on-sigterm", tc.style, "-idle-timeout", "5s")
			cmd.Env = append(os.Environ(), "SLUICE_BACKEND_TEST_MAIN=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
			if !ok {
				t.Fatalf("first line %q", line)
			}
			c := dial(t, addr)
			c.do("POST", "/", "p1", "x")
			cmd.Process.Signal(syscall.SIGTERM)
			_, err = c.waitEOF()
			if tc.style == "reset" && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("idle conn: %v, want ECONNRESET", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v", err)
			}
			recs, err := ReadRecords(rec)
			if err != nil || len(recs) != 1 || recs[0].ID != "p1" || recs[0].Backend != "p1" {
				t.Fatalf("records %+v, %v", recs, err)
			}
		})
	}
}
