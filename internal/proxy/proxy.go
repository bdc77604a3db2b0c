// Package proxy is the data path: one request, top to bottom. It matches the
// request against the route table, builds the outbound request (clean path,
// hop-by-hop headers removed, X-Forwarded-* set), runs the route's filter
// chain, which ends at the route's upstream cluster, and writes the response
// back, streaming. It is the one place where a failure becomes a status code.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/overload"
	"github.com/sluice-gw/sluice/internal/route"
	"github.com/sluice-gw/sluice/internal/tracing"
)

// Table is one immutable snapshot of what a config says about serving a
// request: the routes and the gateway-wide settings. A reload builds a new
// one and swaps it in; requests in flight finish on the one they started with.
type Table struct {
	// Match holds the routes, each with its chain, limit and body cap.
	Match *route.Table
	// TrustedProxies are the peers whose X-Forwarded-* and Forwarded headers are believed.
	TrustedProxies []netip.Prefix
	// UntrustedHeaders (canonical names) are removed from requests whose
	// peer is not a trusted proxy.
	UntrustedHeaders []string
	// Limit bounds the gateway's requests in flight; nil = no limit. It is
	// taken after the route's, so a route at its limit sheds without
	// holding a global slot.
	Limit *overload.Limiter

	// users counts the requests holding the table: from the match until
	// their round trip returns (see Handler.hold and Retire).
	users   atomic.Int64
	retired atomic.Bool
	onIdle  func()
	once    sync.Once
}

// Retire runs f once no request holds t any more: at once if none does,
// else when the last one's round trip returns. t must no longer be the
// handler's table. A reload retires what only the old table used (a
// replaced cluster) this way, so that a request that matched a route
// before the reload reaches the upstream it matched, however long it waited
// in between (a route's queue, its filters).
func (t *Table) Retire(f func()) {
	t.onIdle = f
	t.retired.Store(true)
	if t.users.Load() == 0 {
		t.once.Do(f)
	}
}

func (t *Table) release() {
	if t.users.Add(-1) == 0 && t.retired.Load() {
		t.once.Do(t.onIdle)
	}
}

// Forward is the end of every chain: it sends the request to a cluster under
// a route's policy.
type Forward struct {
	Cluster *cluster.Cluster
	Policy  *cluster.Policy
	// Prefix sends X-Forwarded-Prefix, the start of the path that filters
	// removed (StripPrefix, RewritePath), as Spring Cloud Gateway does.
	Prefix bool
}

func (f *Forward) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := checkOutbound(r); err != nil {
		return nil, err
	}
	if ex := exchange.From(r.Context()); f.Prefix && ex != nil {
		if p := forwardedPrefix(ex.Path, r.URL.Path); p != "" {
			if prior := r.Header["X-Forwarded-Prefix"]; len(prior) > 0 { // from a trusted proxy
				p = strings.Join(prior, ",") + "," + p
			}
			r.Header["X-Forwarded-Prefix"] = []string{p}
		}
	}
	if ex := exchange.From(r.Context()); ex != nil && ex.Traceparent != "" {
		propagate(r.Header, ex)
	}
	return f.Cluster.Forward(r, f.Policy)
}

// Observer is told when a request starts and when it finishes (metrics).
type Observer interface {
	Begin()
	Observe(ex *exchange.Exchange, method, path string, status int, reqBytes, respBytes int64, d time.Duration)
}

// Handler is the proxy's http.Handler.
type Handler struct {
	table    atomic.Pointer[Table]
	Log      *slog.Logger
	Observer Observer
	// Spans, when set, records the gateway's spans (tracing export).
	Spans SpanStarter
	// access is whether and how requests are logged (SetAccessLog); nil = not.
	access atomic.Pointer[accessLog]
	// closing makes every response carry Connection: close (drain).
	closing atomic.Bool
	ups     upgrades
}

// SpanStarter starts the gateway's span of a request whose ex.Trace holds
// the client's context; it may replace the span id and sampling flag, and
// returns the func that ends the span.
type SpanStarter interface {
	Start(ex *exchange.Exchange, method string) (end func(status int))
}

// hold returns the current table, held until release: a table retired
// after this returns waits for it.
func (h *Handler) hold() *Table {
	for {
		t := h.table.Load()
		t.users.Add(1)
		if h.table.Load() == t {
			return t // current after the count: a later Retire sees it
		}
		t.release()
	}
}

// SetTable swaps in a new routing snapshot.
func (h *Handler) SetTable(t *Table) { h.table.Store(t) }

// Table returns the current snapshot.
func (h *Handler) Table() *Table { return h.table.Load() }

// SetClosing makes every later HTTP/1.1 response ask the client to close the connection.
func (h *Handler) SetClosing(c bool) { h.closing.Store(c) }

// Closing reports whether responses ask clients to close (SetClosing).
func (h *Handler) Closing() bool { return h.closing.Load() }

// state is what the handler keeps of one request, in one allocation. It
// is not pooled: the outbound request's context carries ex, and contexts
// can outlive the handler (an HTTP/2 stream's writer, a context.AfterFunc);
// so can body, which an HTTP/2 upstream's writer may still be reading.
type state struct {
	ex   exchange.Exchange
	w    countingWriter
	body countingBody
	url  url.URL // the outbound request's
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &state{
		ex: exchange.Exchange{Start: started(r), Host: r.Host, Proto: r.Proto},
		w:  countingWriter{ResponseWriter: w, closing: &h.closing, grpc: grpcContentType(r)},
	}
	ex, cw := &st.ex, &st.w
	if h.Observer != nil {
		h.Observer.Begin()
	}
	end := h.identify(w, r, ex)
	if b, ok := r.Body.(*slowBody); ok {
		defer b.settle()
	}
	status, reqBytes := h.serve(st, r)
	if status == 0 {
		status = cw.status
	}
	d := time.Since(ex.Start)
	if h.Observer != nil {
		h.Observer.Observe(ex, r.Method, r.URL.Path, status, reqBytes, cw.n, d)
	}
	if end != nil {
		end(status)
	}
	if a := h.access.Load(); a != nil && h.Log != nil && h.Log.Enabled(r.Context(), slog.LevelInfo) && a.keep(status) {
		h.logAccess(a, r, ex, status, reqBytes, cw.n, d)
	}
	if cw.cut {
		// End the client's connection abruptly: a clean end would pass a
		// truncated body off as whole.
		panic(http.ErrAbortHandler)
	}
}

// started is when r began: when LimitBody started its body's clock, just
// before, or now.
func started(r *http.Request) time.Time {
	if b, ok := r.Body.(*slowBody); ok {
		return b.start
	}
	return time.Now()
}

// identify gives the request its id (the client's X-Request-Id, or a new
// one) and its trace context, and sets the id on the response. Forward,
// the end of the chain, sets both on the upstream request: the filters see
// the client's headers. It returns the end of the span when spans are
// recorded.
func (h *Handler) identify(w http.ResponseWriter, r *http.Request, ex *exchange.Exchange) (end func(int)) {
	hd := r.Header
	var tp, ts string
	if v := hd["Traceparent"]; len(v) == 1 {
		tp = v[0]
	}
	if v := hd["Tracestate"]; len(v) > 0 {
		ts = strings.Join(v, ",")
	}
	tracing.Begin(&ex.Trace, tp, ts)
	if h.Spans != nil {
		end = h.Spans.Start(ex, r.Method)
	}
	if v := hd["X-Request-Id"]; len(v) > 0 && v[0] != "" {
		ex.RequestID = v[0]
		ex.Traceparent = tracing.Traceparent(&ex.Trace)
	} else {
		ex.RequestID, ex.Traceparent = tracing.NewRequestIDAndTraceparent(&ex.Trace)
		ex.RequestIDMade = true
	}
	w.Header()["X-Request-Id"] = ex.Values(ex.RequestID)
	return end
}

// propagate sets the request id (when the gateway made it) and the trace
// context on the upstream request.
func propagate(hd http.Header, ex *exchange.Exchange) {
	if ex.RequestIDMade {
		hd["X-Request-Id"] = ex.Values(ex.RequestID)
	}
	hd["Traceparent"] = ex.Values(ex.Traceparent)
	if ex.Trace.State == "" {
		delete(hd, "Tracestate") // it belonged to a malformed traceparent
	}
}

// serve returns the status when the gateway answered itself.
func (h *Handler) serve(st *state, r *http.Request) (int, int64) {
	w, ex := &st.w, &st.ex
	if err := checkInbound(r); err != nil {
		return h.fail(w, ex, err), 0
	}
	t := h.hold()
	held := true
	defer func() {
		if held {
			t.release()
		}
	}()
	rt, path, ok, err := match(t.Match, r, ex)
	if err != nil {
		return h.fail(w, ex, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.BadRequest, Err: err}), 0
	}
	if !ok {
		return h.fail(w, ex, &exchange.Error{Status: http.StatusNotFound, Reason: exchange.NoRoute, Err: errors.New("no route matches " + r.Method + " " + path)}), 0
	}
	ex.RouteID = rt.ID
	ex.Upstream = rt.Upstream
	ex.Path = path
	if w.grpc != "" {
		if d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout")); ok {
			ex.Deadline = ex.Start.Add(d)
		}
	}
	routeBody(r, rt.Body)
	if err := rt.Limit.Acquire(r.Context()); err != nil {
		return h.shed(w, ex, err), 0
	}
	if err := t.Limit.Acquire(r.Context()); err != nil {
		rt.Limit.Release(0, false)
		return h.shed(w, ex, err), 0
	}
	var latency time.Duration
	sampled := false
	defer func() {
		t.Limit.Release(latency, sampled)
		rt.Limit.Release(latency, sampled)
	}()
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	trusted := contains(t.TrustedProxies, peer.Addr())

	body := r.Body
	readAhead := false // body is the whole of it, in memory
	if rt.MaxBodySize > 0 {
		if r.ContentLength > rt.MaxBodySize {
			return h.fail(w, ex, tooLarge(rt.MaxBodySize)), 0
		}
		if r.ContentLength != 0 {
			body = http.MaxBytesReader(w, r.Body, rt.MaxBodySize)
		}
		if r.ContentLength < 0 && rt.MaxBodySize <= readAheadLimit {
			// A small cap on a body of unknown length: read it all first, so
			// an oversized one is refused before any of it reaches a backend.
			// (Without a cap, or with a large one, bodies stream.) The
			// cluster replays this buffer as it is, never copying it again.
			b, err := io.ReadAll(body)
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return h.fail(w, ex, tooLarge(rt.MaxBodySize)), int64(len(b))
				}
				return h.fail(w, ex, bodyTimedOut(r, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.ClientBodyError, Err: err})), int64(len(b))
			}
			body, readAhead = cluster.InMemory(b), true
			r.ContentLength, r.TransferEncoding = int64(len(b)), nil
		}
	}
	counted := &st.body
	counted.rc = body
	out := r.WithContext(exchange.With(r.Context(), ex))
	out.RequestURI = ""
	st.url = url.URL{Scheme: "http", Path: path, RawQuery: r.URL.RawQuery}
	out.URL = &st.url
	out.Host = ""
	out.Close = false
	switch {
	case r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" && len(r.TransferEncoding) == 0:
		out.Body = nil
	case readAhead:
		out.Body = body // the cluster replays this buffer as it is
		counted.n.Store(r.ContentLength)
		counted.eof.Store(true) // read in full already
	default:
		out.Body = counted
	}
	out.Header.Del("Expect")
	upgrade := removeHopByHop(out.Header)
	if upgrade != "" {
		out.Header["Connection"] = []string{"Upgrade"}
		out.Header["Upgrade"] = []string{upgrade}
	}
	if !trusted {
		stripUntrusted(out.Header, t.UntrustedHeaders)
	}
	ex.Client = forwarded(out.Header, r, ex, peer.Addr(), trusted, t.TrustedProxies)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // Request.Write adds Go's own otherwise
	}

	sent := time.Now()
	resp, err := rt.Chain.RoundTrip(out)
	latency, sampled = time.Since(sent), r.Context().Err() == nil
	t.release() // the upstream was reached (or not): the table may be retired
	held = false
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = tooLarge(mbe.Limit)
		}
		return h.fail(w, ex, bodyTimedOut(r, err)), counted.n.Load()
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		status, in := h.switchProtocols(w, r, resp, ex)
		return status, counted.n.Load() + in
	}
	h.copyResponse(w, resp, ex)
	if r.ProtoMajor == 1 && out.Body != nil && !counted.eof.Load() && (r.ContentLength < 0 || counted.n.Load() < r.ContentLength) {
		// The backend answered before it had the whole body. (An HTTP/2
		// client's stream is reset instead, by net/http, with no harm to
		// the connection; and a gRPC stream may legitimately end first.)
		discardUpload(w, counted)
	}
	return 0, counted.n.Load()
}

// discardUpload reads the rest of a request body that the backend answered
// early (a 413 or 401 before it read the upload) and throws it away, for at
// most lingerTime, so that the client finishes sending without an error
// (its connection would otherwise be reset under it), as nginx's lingering
// close does.
func discardUpload(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	rc.Flush()
	if rc.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	io.Copy(io.Discard, io.LimitReader(body, lingerBytes))
	rc.SetReadDeadline(time.Time{}) // the connection may carry more requests
}

// lingerTime and lingerBytes bound how much of an early-answered upload is
// read and discarded.
const (
	lingerTime  = 10 * time.Second
	lingerBytes = 256 << 20
)

// readAheadLimit is the largest max_body_size for which a body of unknown
// length is read in full before it is forwarded.
const readAheadLimit = 1 << 20

func tooLarge(limit int64) *exchange.Error {
	return &exchange.Error{Status: http.StatusRequestEntityTooLarge, Reason: exchange.BodyTooLarge,
		Err: errors.New("request body larger than " + strconv.FormatInt(limit, 10) + " bytes")}
}

// bufs holds the buffers responses are copied through. 64 KiB, a loopback
// or LAN socket's typical read size, takes fewer read and write calls than
// 32 KiB: 11–18% less CPU per 100 KiB response (sluice-bench --compare-bin).
var bufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyResponse streams resp to w. A response that is an event stream or has
// no declared length is flushed after every read, so Server-Sent Events and
// streamed answers reach the client as they are produced.
func (h *Handler) copyResponse(w *countingWriter, resp *http.Response, ex *exchange.Exchange) {
	defer resp.Body.Close()
	removeHopByHop(resp.Header)
	dst := w.Header()
	for k, vv := range resp.Header {
		if dst[k] == nil {
			dst[k] = vv
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	announceTrailers(dst, resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	flush := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := bufs.Get().(*[]byte)
	err := copyBody(w, resp.Body, *bp, flush)
	bufs.Put(bp)
	if err != nil {
		if errors.Is(err, errClientGone) {
			ex.Reason = exchange.ClientCanceled
		} else {
			ex.Reason = exchange.UpstreamResetAfterStart
		}
		if h.access.Load() != nil && h.Log != nil {
			h.Log.LogAttrs(context.Background(), slog.LevelWarn, "response cut", slog.String("route", ex.RouteID),
				slog.String("endpoint", ex.Endpoint), slog.String("reason", ex.Reason), slog.String("error", err.Error()))
		}
		w.cut = true // ServeHTTP aborts the connection once the request is logged
		return
	}
	copyTrailers(dst, resp.Trailer)
}

var errClientGone = errors.New("client went away")

func copyBody(w *countingWriter, r io.Reader, buf []byte, flush bool) error {
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientGone
			}
			if flush {
				w.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// switchProtocols completes an upgrade (WebSocket): it hijacks the client
// connection, passes the 101 on, and copies bytes both ways until either
// side ends. It returns the status and the bytes sent to the backend after
// the 101; those sent to the client are counted in w.
func (h *Handler) switchProtocols(w *countingWriter, r *http.Request, resp *http.Response, ex *exchange.Exchange) (int, int64) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return h.fail(w, ex, &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.UpstreamBadResponse, Err: errors.New("101 without a connection")}), 0
	}
	defer up.Close()
	rc := http.NewResponseController(w.ResponseWriter)
	conn, brw, err := rc.Hijack()
	if err != nil {
		return h.fail(w, ex, &exchange.Error{Status: http.StatusInternalServerError, Reason: exchange.BadRequest, Err: err}), 0
	}
	defer conn.Close()
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{resp.Header.Get("Upgrade")}
	if resp.Header.Get("Upgrade") == "" {
		resp.Header["Upgrade"] = []string{r.Header.Get("Upgrade")}
	}
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return http.StatusSwitchingProtocols, 0
	}
	if err := brw.Flush(); err != nil {
		return http.StatusSwitchingProtocols, 0
	}
	ws := strings.EqualFold(resp.Header.Get("Upgrade"), "websocket")
	in, out := h.splice(conn, brw.Reader, up, ws)
	w.n += out
	return http.StatusSwitchingProtocols, in
}

// shed answers a request refused by a concurrency limit: a fast 503 with
// Retry-After, or 499 when the client left while it waited.
func (h *Handler) shed(w *countingWriter, ex *exchange.Exchange, err error) int {
	if !errors.Is(err, overload.ErrLimit) && !errors.Is(err, overload.ErrQueueTimeout) {
		return h.fail(w, ex, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: err})
	}
	w.Header().Set("Retry-After", "1")
	return h.fail(w, ex, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: exchange.Overloaded, Err: err})
}

// fail answers with the gateway's own error response and returns its
// status: a JSON body, or for a gRPC call a gRPC status in an HTTP 200
// (failGRPC), when the status returned (for the log and the metrics) is
// still the HTTP status the error maps to.
func (h *Handler) fail(w *countingWriter, ex *exchange.Exchange, err error) int {
	var ge *exchange.Error
	if !errors.As(err, &ge) {
		ge = &exchange.Error{Status: http.StatusBadGateway, Reason: "filter_error", Err: err}
	}
	ex.Reason = ge.Reason
	if ge.Status == 499 {
		return 499 // nobody to answer
	}
	if w.grpc != "" {
		failGRPC(w, w.grpc, ge)
		h.logError(ex, ge)
		return ge.Status
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Sluice-Reason", ge.Reason)
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(ge.Status)
	b := make([]byte, 0, 160)
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(ge.Status), 10)
	b = append(b, `,"error":`...)
	b = strconv.AppendQuote(b, http.StatusText(ge.Status))
	b = append(b, `,"reason":`...)
	b = strconv.AppendQuote(b, ge.Reason)
	if ex.RouteID != "" {
		b = append(b, `,"route":`...)
		b = strconv.AppendQuote(b, ex.RouteID)
	}
	b = append(b, "}\n"...)
	w.Write(b)
	h.logError(ex, ge)
	return ge.Status
}

func (h *Handler) logError(ex *exchange.Exchange, ge *exchange.Error) {
	if h.Log != nil && ge.Status >= 500 && h.Log.Enabled(context.Background(), slog.LevelDebug) {
		h.Log.LogAttrs(context.Background(), slog.LevelDebug, "gateway error", slog.String("route", ex.RouteID),
			slog.String("reason", ge.Reason), slog.String("error", ge.Error()))
	}
}

// countingWriter counts the body bytes written and remembers the status.
// It is where response headers are written, so it is also where a drain's
// Connection: close is added: to every response whose headers are written
// once the closing phase has begun, however long ago its request arrived.
type countingWriter struct {
	http.ResponseWriter
	closing *atomic.Bool // the Handler's: clients are asked to close
	status  int
	n       int64
	cut     bool   // the response body was cut short
	grpc    string // the request is a gRPC call: the content type of gateway errors (grpcContentType)
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.askToClose()
	}
	w.ResponseWriter.WriteHeader(code)
}

// askToClose adds Connection: close while the gateway drains (on HTTP/2,
// net/http turns it into a graceful GOAWAY).
func (w *countingWriter) askToClose() {
	if w.closing != nil && w.closing.Load() {
		hd := w.Header()
		hd["Connection"] = []string{"close"}
		delete(hd, "Keep-Alive")
	}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.askToClose()
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body bytes read. Reads are serialised and
// the counts atomic: an HTTP/2 stream's writer may still be reading the body
// when the response is done and discardUpload reads the rest.
type countingBody struct {
	mu  sync.Mutex
	rc  io.ReadCloser
	n   atomic.Int64
	eof atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }
