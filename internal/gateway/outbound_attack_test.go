package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/testkit/h2ctest"
)

// wireRecorder is an HTTP/1.1 backend on a raw socket that records the
// bytes of every request head it receives, verbatim, and answers 200.
type wireRecorder struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
}

func newWireRecorder(t *testing.T) *wireRecorder {
	w := &wireRecorder{}
	w.addr = gatewaytest.RawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var head []byte
			for {
				line, err := br.ReadSlice('\n')
				head = append(head, line...)
				if err != nil {
					w.record(head)
					return
				}
				if len(line) <= 2 && strings.TrimSpace(string(line)) == "" {
					break
				}
			}
			w.record(head)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return w
}

func (w *wireRecorder) record(b []byte) {
	w.mu.Lock()
	w.got.Write(b)
	w.mu.Unlock()
}

// take returns and forgets what was received so far.
func (w *wireRecorder) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.got.String()
	w.got.Reset()
	return s
}

// h2Recorder is an h2c backend (Go's HTTP/2 server) that records each
// request as method, target, host and headers.
type h2Recorder struct {
	addr string
	mu   sync.Mutex
	got  []string
}

func newH2Recorder(t *testing.T) *h2Recorder {
	r := &h2Recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.got = append(r.got, req.Method+" "+req.RequestURI+" host="+req.Host+" "+headerString(req.Header))
		r.mu.Unlock()
		io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.addr = ln.Addr().String()
	return r
}

func (r *h2Recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.got, "\n")
	r.got = nil
	return s
}

func headerString(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// TestRequestLineInjection sends requests whose method, query, authority
// or filter-made Host would break the HTTP/1.1 request line or Host header
// upstream, from an HTTP/1.1 client (raw bytes) and an HTTP/2 client (raw
// HEADERS frames over h2c), to an HTTP/1.1 backend that records the bytes it
// receives and an h2c backend. Each must be refused (400, or a stream reset
// by the HTTP/2 server) and reach no backend, for every pair of protocols.
func TestRequestLineInjection(t *testing.T) {
	t.Parallel()
	wire := newWireRecorder(t)
	h2be := newH2Recorder(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  h1: {endpoints: ["`+wire.addr+`"]}
		  h2: {endpoints: ["`+h2be.addr+`"], protocol: h2c}
		routes:
		  - {id: h1-host, uri: lb://h1, predicates: ["Path=/h1/host/{seg}"], filters: ["SetRequestHostHeader={seg}"]}
		  - {id: h1, uri: lb://h1, predicates: ["Path=/h1/**"]}
		  - {id: h2-host, uri: lb://h2, predicates: ["Path=/h2/host/{seg}"], filters: ["SetRequestHostHeader={seg}"]}
		  - {id: h2, uri: lb://h2, predicates: ["Path=/h2/**"]}
		`)
	type probe struct {
		name string
		// h2 fields (pseudo-headers) when the client speaks HTTP/2, else
		// the raw HTTP/1.1 request.
		h2 []string
		h1 string
	}
	h2req := func(method, path, authority string) []string {
		return []string{":method", method, ":scheme", "http", ":authority", authority, ":path", path}
	}
	probes := func(up string) []probe {
		return []probe{
			{name: "h2 method holding a request line", h2: h2req("GET /"+up+"/evil HTTP/1.1", "/"+up+"/x", "gw")},
			{name: "h2 method with a control byte", h2: h2req("GET\x01", "/"+up+"/x", "gw")},
			{name: "h2 query holding spaces", h2: h2req("GET", "/"+up+"/x?a HTTP/1.0 X-Evil: 1", "gw")},
			{name: "h2 query with a tab", h2: h2req("GET", "/"+up+"/x?a\tb", "gw")},
			{name: "h2 authority with a space", h2: h2req("GET", "/"+up+"/x", "a b")},
			{name: "h2 authority with a slash", h2: h2req("GET", "/"+up+"/x", "a/b")},
			{name: "h2 Host made of a decoded space", h2: h2req("GET", "/"+up+"/host/a%20b", "gw")},
			{name: "h1 Host made of a decoded space", h1: "GET /" + up + "/host/a%20b HTTP/1.1\nHost: gw\n"},
			{name: "h1 Host made of a decoded control byte", h1: "GET /" + up + "/host/a%01b HTTP/1.1\nHost: gw\n"},
		}
	}
	takers := map[string]func() string{"h1": wire.take, "h2": h2be.take}
	for _, up := range []string{"h1", "h2"} {
		for _, p := range probes(up) {
			t.Run(p.name+" to "+up, func(t *testing.T) {
				var status string
				if p.h2 != nil {
					fr := h2ctest.PriorKnowledge(t, g.Addr())
					h2ctest.Request(t, fr, 1, p.h2...)
					status = h2ctest.Status(t, fr, 1)
				} else {
					resp, _ := gatewaytest.Raw(t, g.Addr(), p.h1)
					status = strconv.Itoa(resp.StatusCode)
				}
				got := takers[up]()
				// 400 from the gateway, or a reset from net/http's HTTP/2
				// server, which refuses some of these itself.
				if status != "400" && status != "reset" || got != "" {
					t.Errorf("answered %s; the backend received:\n%s", status, got)
				}
			})
		}
		t.Run("a well-formed request to "+up+" passes", func(t *testing.T) {
			fr := h2ctest.PriorKnowledge(t, g.Addr())
			h2ctest.Request(t, fr, 1, h2req("GET", "/"+up+"/x?a=b", "gw:8080")...)
			status := h2ctest.Status(t, fr, 1)
			got := takers[up]()
			if status != "200" || !strings.Contains(got, "GET /"+up+"/x?a=b") {
				t.Errorf("answered %s; the backend received:\n%s", status, got)
			}
		})
	}
}
