// Package backend is the test backend behind the gateway in integration
// tests and chaos runs: a real net/http server on 127.0.0.1 whose connection
// lifecycle (idle timeout, advertised keep-alive, requests per connection,
// latency, shutdown style, restart on the same address) is set per test.
//
// Every request that carries an X-Request-Id header is recorded when it is
// processed, before its response is written: a POST after its body has been
// read in full. Records are kept in memory and, with Options.RecordFile,
// appended to a file with one write per record, so they survive a SIGKILL.
//
// Responses: a POST (or PUT) is answered "len=<body bytes>"; any other method
// "backend=<name> path=<path>", or N bytes of 'x' with ?bytes=N. ?sleep=<dur>
// adds to the latency. Every response carries X-Backend: <name>.
package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Backend. The zero value is a plain HTTP/1.1 server on
// 127.0.0.1 with Go's defaults (no idle timeout, no Keep-Alive header).
type Options struct {
	Name string // reported in bodies, X-Backend and records; default the address
	Addr string // listen address; default "127.0.0.1:0"

	// IdleTimeout closes a keep-alive conn after it has been idle for exactly
	// this long (with a FIN and no warning). Zero means never.
	IdleTimeout time.Duration
	// KeepAliveHeader, if set, is sent as the Keep-Alive header on every
	// HTTP/1.x response, e.g. "timeout=5, max=100". It does not change
	// IdleTimeout.
	KeepAliveHeader string
	// MaxRequestsPerConn answers the Nth request on a conn with
	// "Connection: close" and closes the conn after it. Zero means no limit.
	MaxRequestsPerConn int
	// Latency delays every response; see also SetLatency.
	Latency time.Duration
	// SilentCloseAfter closes a conn SilentCloseDelay after its Nth
	// response, which carries no "Connection: close" (uWSGI and gunicorn
	// max-requests, some load balancers). Whatever arrives in between is
	// read and discarded, never handled, so the close is a plain FIN.
	// Zero means never.
	SilentCloseAfter int
	// SilentCloseDelay is the pause before that close; default 3ms.
	SilentCloseDelay time.Duration
	// EarlyAnswerOver answers a POST or PUT whose Content-Length is larger
	// than this with 413, a JSON body and "Connection: close" after reading
	// only EarlyAnswerRead bytes of its body, then closes the conn (an
	// upload limit or auth check before the body is read). Zero means never.
	EarlyAnswerOver int64
	// EarlyAnswerRead is how much of such a body is read first; default 64 KiB.
	EarlyAnswerRead int64

	// H2C serves HTTP/2 with prior knowledge (h2c) besides HTTP/1.1.
	H2C bool
	// MaxConcurrentStreams per HTTP/2 conn; zero means Go's default (250).
	MaxConcurrentStreams int

	// RecordFile, if set, gets one line per recorded request (see ReadRecords).
	RecordFile string
}

// Record is one request the backend processed.
type Record struct {
	At      time.Time
	Backend string
	Method  string
	ID      string // the X-Request-Id header
	// Dropped: the request reached the backend but no handler ran: the
	// server read it from the socket and closed the connection first
	// (net/http's Shutdown closes a connection it still counts as idle while
	// a request is being read), or it was still waiting unread in the
	// socket when the backend exited (Abrupt, Reset). It was not processed,
	// and no proxy can tell it from one that was.
	Dropped bool
}

// ShutdownStyle is how a backend stops serving.
type ShutdownStyle int

const (
	// Graceful stops accepting, closes idle conns at once and lets in-flight
	// requests finish, like http.Server.Shutdown (HTTP/2 conns get GOAWAY).
	Graceful ShutdownStyle = iota
	// Abrupt closes the listener and every conn at once (FIN, or RST where
	// the kernel still holds unread data).
	Abrupt
	// Reset sets SO_LINGER 0 on every conn and closes it, so peers get RST.
	Reset
)

var styleNames = []string{"graceful", "abrupt", "reset"}

func (s ShutdownStyle) String() string {
	if int(s) < len(styleNames) {
		return styleNames[s]
	}
	return "ShutdownStyle(" + strconv.Itoa(int(s)) + ")"
}

// ParseShutdownStyle parses "graceful", "abrupt" or "reset".
func ParseShutdownStyle(s string) (ShutdownStyle, error) {
	for i, n := range styleNames {
		if s == n {
			return ShutdownStyle(i), nil
		}
	}
	return 0, fmt.Errorf("unknown shutdown style %q (want graceful, abrupt or reset)", s)
}

// Backend is a running test backend. Its methods are safe for concurrent use.
type Backend struct {
	opts    Options
	addr    string
	latency atomic.Int64 // nanoseconds
	served  atomic.Int64

	recMu   sync.Mutex
	records []Record
	recFile *os.File

	mu    sync.Mutex
	srv   *http.Server // nil while stopped
	ln    net.Listener // srv's
	conns map[net.Conn]struct{}
	done  chan struct{} // closed when srv's Serve returns
}

// Start listens on opts.Addr and serves until Shutdown or Close.
func Start(opts Options) (*Backend, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	b := &Backend{opts: opts, conns: make(map[net.Conn]struct{})}
	b.latency.Store(int64(opts.Latency))
	if opts.RecordFile != "" {
		f, err := os.OpenFile(opts.RecordFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		b.recFile = f
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		if b.recFile != nil {
			b.recFile.Close()
		}
		return nil, err
	}
	b.addr = ln.Addr().String()
	if b.opts.Name == "" {
		b.opts.Name = b.addr
	}
	b.serve(ln)
	return b, nil
}

// Addr is the host:port the backend listens on; it survives Restart.
func (b *Backend) Addr() string { return b.addr }

// Name is Options.Name, or the address.
func (b *Backend) Name() string { return b.opts.Name }

// SetLatency changes the per-request delay for requests that start later.
func (b *Backend) SetLatency(d time.Duration) { b.latency.Store(int64(d)) }

// Served is the number of responses started, recorded or not.
func (b *Backend) Served() int64 { return b.served.Load() }

// Processed returns a copy of the records so far.
func (b *Backend) Processed() []Record {
	b.recMu.Lock()
	defer b.recMu.Unlock()
	return append([]Record(nil), b.records...)
}

// Conns is the number of open client conns.
func (b *Backend) Conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

var nopLogger = log.New(io.Discard, "", 0)

type connKey struct{}

// connInfo is per-conn state, reached from a request's context.
type connInfo struct {
	requests atomic.Int64
	answered atomic.Int64 // responses completed, for SilentCloseAfter
	tap      *tapConn
}

// tapConn keeps the bytes read since the last request reached a handler, so
// that a request the server reads and then drops unhandled is recorded.
type tapConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
	onDrop  func(method, id string)
	// silenced is set once the conn is to close after its last response:
	// the server gets no more bytes from it, so nothing more is handled;
	// its reads wait for gone, closed after the socket.
	silenced atomic.Bool
	gone     chan struct{}
}

func (c *tapConn) Read(p []byte) (int, error) {
	if c.silenced.Load() {
		<-c.gone
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if c.silenced.Load() {
		<-c.gone
		return 0, io.EOF // read, and discarded
	}
	if n > 0 {
		c.mu.Lock()
		if len(c.pending) < 64<<10 {
			c.pending = append(c.pending, p[:n]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// handled marks the buffered bytes as delivered to a handler.
func (c *tapConn) handled() {
	c.mu.Lock()
	c.pending = c.pending[:0]
	c.mu.Unlock()
}

// dropped returns the request left unhandled in the buffered bytes, if any.
func (c *tapConn) dropped() (method, id string, ok bool) {
	c.mu.Lock()
	data := append([]byte(nil), c.pending...)
	c.mu.Unlock()
	if len(data) == 0 {
		return "", "", false
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil || req.Header.Get("X-Request-Id") == "" {
		return "", "", false
	}
	return req.Method, req.Header.Get("X-Request-Id"), true
}

// closeSilently closes the conn after delay, reading and discarding
// whatever arrives meanwhile: its peer sees a FIN, as from a server that
// reached its request limit and said nothing.
func (c *tapConn) closeSilently(delay time.Duration) {
	c.gone = make(chan struct{})
	c.silenced.Store(true)
	time.AfterFunc(delay, func() {
		defer close(c.gone)
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			takePending(tc)
		}
		c.mu.Lock()
		c.onDrop = nil
		c.mu.Unlock()
		c.Conn.Close()
	})
}

// Close records a request the server read but never handed to a handler,
// then closes. http.Server.Shutdown closes idle connections through here.
func (c *tapConn) Close() error {
	c.mu.Lock()
	onDrop := c.onDrop
	c.onDrop = nil
	c.mu.Unlock()
	if onDrop == nil {
		return c.Conn.Close()
	}
	// Bytes that arrived but were never read make the kernel answer the
	// close with an RST; take them (and keep the RST) so that a request
	// dropped that way is recorded too. They are taken without blocking and
	// without a read deadline, which would wake the server's own read on
	// this conn and let it close the conn first; the close follows at once.
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		if data := takePending(tc); len(data) > 0 {
			tc.SetLinger(0)
			c.mu.Lock()
			c.pending = append(c.pending, data...)
			c.mu.Unlock()
		}
	}
	err := c.Conn.Close()
	if method, id, ok := c.dropped(); ok {
		onDrop(method, id)
	}
	return err
}

// peekPending returns a copy of the bytes waiting in c's receive buffer
// (up to 64 KiB), leaving them there, without blocking and without taking
// the conn's read lock.
func peekPending(c *net.TCPConn) []byte {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	buf := make([]byte, 64<<10)
	n := 0
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return buf[:max(n, 0)]
}

// takePending returns the bytes waiting in c's receive buffer, without
// blocking and without taking the conn's read lock (which the server's
// goroutine, blocked in Read, holds).
func takePending(c *net.TCPConn) []byte {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var out []byte
	buf := make([]byte, 64<<10)
	rc.Control(func(fd uintptr) {
		for {
			n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
			if n <= 0 || err != nil {
				return
			}
			out = append(out, buf[:n]...)
		}
	})
	return out
}

type tapListener struct {
	net.Listener
	onDrop func(method, id string)
	// accepted sees every conn as it is accepted, before http.Server starts
	// serving it (its ConnState hook runs later, in the conn's goroutine).
	accepted func(net.Conn)
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c, onDrop: l.onDrop}
	l.accepted(tc)
	return tc, nil
}

func (b *Backend) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:     b,
		IdleTimeout: b.opts.IdleTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ci := new(connInfo)
			ci.tap, _ = c.(*tapConn)
			return context.WithValue(ctx, connKey{}, ci)
		},
		ConnState: b.trackConn,
		ErrorLog:  nopLogger,
	}
	if b.opts.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: b.opts.MaxConcurrentStreams}
	}
	done := make(chan struct{})
	b.mu.Lock()
	b.srv = srv
	b.ln = ln
	b.done = done
	b.mu.Unlock()
	go func() {
		defer close(done)
		srv.Serve(tapListener{ln, func(method, id string) {
			b.record(Record{At: time.Now(), Backend: b.opts.Name, Method: method, ID: id, Dropped: true})
		}, func(c net.Conn) { b.trackConn(c, http.StateNew) }})
	}()
}

func (b *Backend) trackConn(c net.Conn, s http.ConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch s {
	case http.StateNew:
		b.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(b.conns, c)
	}
}

// ServeHTTP answers every request as described in the package comment.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ci, _ := r.Context().Value(connKey{}).(*connInfo); ci != nil && ci.tap != nil && r.ProtoMajor == 1 {
		ci.tap.handled()
	}
	if b.opts.EarlyAnswerOver > 0 && r.ContentLength > b.opts.EarlyAnswerOver && r.ProtoMajor == 1 {
		b.answerEarly(w, r)
		return
	}
	var n int64
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		var err error
		n, err = io.Copy(io.Discard, r.Body)
		if err != nil {
			// The conn broke before the whole body arrived: the client went
			// away, or this backend's own shutdown closed a conn that it still
			// took for idle as the request came in. Either way the request was
			// read in part and dropped, not processed.
			if id := r.Header.Get("X-Request-Id"); id != "" {
				b.record(Record{At: time.Now(), Backend: b.opts.Name, Method: r.Method, ID: id, Dropped: true})
			}
			return
		}
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		b.record(Record{At: time.Now(), Backend: b.opts.Name, Method: r.Method, ID: id})
	}
	delay := time.Duration(b.latency.Load())
	if s := r.URL.Query().Get("sleep"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			delay += d
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	h := w.Header()
	h.Set("X-Backend", b.opts.Name)
	if r.ProtoMajor == 1 {
		if b.opts.KeepAliveHeader != "" {
			h.Set("Keep-Alive", b.opts.KeepAliveHeader)
		}
		if ci, ok := r.Context().Value(connKey{}).(*connInfo); ok && b.opts.MaxRequestsPerConn > 0 {
			if ci.requests.Add(1) >= int64(b.opts.MaxRequestsPerConn) {
				h.Set("Connection", "close")
			}
		}
	}
	var body []byte
	switch {
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		body = []byte("len=" + strconv.FormatInt(n, 10))
	case r.URL.Query().Has("bytes"):
		size, _ := strconv.Atoi(r.URL.Query().Get("bytes"))
		body = []byte(strings.Repeat("x", max(size, 0)))
	default:
		body = []byte("backend=" + b.opts.Name + " path=" + r.URL.Path)
	}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	b.served.Add(1)
	w.Write(body)
	if ci, ok := r.Context().Value(connKey{}).(*connInfo); ok && ci.tap != nil && b.opts.SilentCloseAfter > 0 && r.ProtoMajor == 1 {
		if ci.answered.Add(1) >= int64(b.opts.SilentCloseAfter) {
			w.(http.Flusher).Flush() // the whole response is on the wire first
			delay := b.opts.SilentCloseDelay
			if delay <= 0 {
				delay = 3 * time.Millisecond
			}
			ci.tap.closeSilently(delay)
		}
	}
}

// EarlyAnswer is the JSON body of an early 413 (Options.EarlyAnswerOver).
const EarlyAnswer = `{"error":"payload_too_large","message":"upload refused before it was read"}`

// answerEarly reads part of an upload, then refuses it with 413 and closes.
// The request is recorded as processed: the backend acted on it.
func (b *Backend) answerEarly(w http.ResponseWriter, r *http.Request) {
	limit := b.opts.EarlyAnswerRead
	if limit <= 0 {
		limit = 64 << 10
	}
	io.CopyN(io.Discard, r.Body, limit)
	if id := r.Header.Get("X-Request-Id"); id != "" {
		b.record(Record{At: time.Now(), Backend: b.opts.Name, Method: r.Method, ID: id})
	}
	h := w.Header()
	h.Set("X-Backend", b.opts.Name)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(EarlyAnswer)))
	h.Set("Connection", "close")
	b.served.Add(1)
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	w.Write([]byte(EarlyAnswer))
}

func (b *Backend) record(rec Record) {
	b.recMu.Lock()
	defer b.recMu.Unlock()
	b.records = append(b.records, rec)
	if b.recFile != nil {
		// One write per record, O_APPEND: a SIGKILL loses no whole line.
		b.recFile.Write([]byte(formatRecord(rec)))
	}
}

func formatRecord(r Record) string {
	if r.Dropped {
		return fmt.Sprintf("%d %s %s %s dropped\n", r.At.UnixNano(), r.Backend, r.Method, r.ID)
	}
	return fmt.Sprintf("%d %s %s %s\n", r.At.UnixNano(), r.Backend, r.Method, r.ID)
}

// ReadRecords reads a record file written by a backend (possibly by several
// backends, or by one across restarts). A torn last line is ignored.
func ReadRecords(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for line := range strings.Lines(string(data)) {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		f := strings.Fields(line)
		if len(f) != 4 && !(len(f) == 5 && f[4] == "dropped") {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		recs = append(recs, Record{At: time.Unix(0, ns), Backend: f[1], Method: f[2], ID: f[3], Dropped: len(f) == 5})
	}
	return recs, nil
}

// Shutdown stops serving in the given style. Graceful waits for in-flight
// requests until ctx is done, then closes the rest. The backend can be
// started again on the same address with Restart.
func (b *Backend) Shutdown(ctx context.Context, style ShutdownStyle) error {
	b.mu.Lock()
	srv, ln, done := b.srv, b.ln, b.done
	b.srv, b.ln = nil, nil
	b.mu.Unlock()
	if srv == nil {
		return nil
	}
	if style == Graceful {
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close()
		}
		<-done
		return err
	}
	// A dying process loses every conn at the same instant, including those
	// accepted but not yet served (which http.Server.Close does not know of
	// yet), and records nothing: close the sockets underneath the server
	// first (SO_LINGER 0 first for Reset, so that the kernel sends RST), then
	// the server. Closing through the server would let a handler woken by the
	// close answer before its socket is gone.
	// A request that had reached the backend but was not handled dies with
	// it: read by the server and not yet handed to a handler, or still
	// waiting in the socket's receive buffer (the kernel then answers the
	// close with an RST and no FIN). It is recorded as dropped (bookkeeping
	// only: the waiting bytes are peeked, not taken, so the wire is
	// unchanged), so that a check can tell it from one the backend never saw.
	ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		raw := c
		t, _ := c.(*tapConn)
		if t != nil {
			raw = t.Conn
		}
		tc, _ := raw.(*net.TCPConn)
		if t != nil {
			var waiting []byte
			if tc != nil {
				waiting = peekPending(tc)
			}
			t.mu.Lock()
			t.onDrop = nil
			t.pending = append(t.pending, waiting...)
			t.mu.Unlock()
		}
		if tc != nil && style == Reset {
			tc.SetLinger(0)
		}
		raw.Close()
		if t == nil {
			continue
		}
		if method, id, ok := t.dropped(); ok {
			b.record(Record{At: time.Now(), Backend: b.opts.Name, Method: method, ID: id, Dropped: true})
		}
	}
	b.mu.Unlock()
	err := srv.Close()
	<-done
	return err
}

// Restart stops the backend in the given style, stays down for down, and
// serves again on the same address with a fresh http.Server. Records and
// latency carry over.
func (b *Backend) Restart(style ShutdownStyle, down time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.Shutdown(ctx, style)
	time.Sleep(down)
	return b.Listen()
}

// Listen serves again on the backend's address after a Shutdown. It fails if
// the backend is serving.
func (b *Backend) Listen() error {
	b.mu.Lock()
	serving := b.srv != nil
	b.mu.Unlock()
	if serving {
		return errors.New("backend: already serving")
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return err
	}
	b.serve(ln)
	return nil
}

// Close stops the backend abruptly and closes the record file.
func (b *Backend) Close() error {
	err := b.Shutdown(context.Background(), Abrupt)
	b.recMu.Lock()
	defer b.recMu.Unlock()
	if b.recFile != nil {
		b.recFile.Close()
		b.recFile = nil
	}
	return err
}
