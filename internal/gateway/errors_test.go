package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// errorBody is the gateway's own error response.
type errorBody struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Route  string `json:"route"`
}

func TestGatewayErrors(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	var resetConns atomic.Int64
	reset := gatewaytest.RawBackend(t, func(c net.Conn) {
		resetConns.Add(1)
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			io.Copy(io.Discard, req.Body)
		}
		// Close without answering.
	})
	echo := gatewaytest.NewEcho(t, "echo")
	g := gatewaytest.Start(t, `
		routes:
		  - id: refused
		    uri: http://`+gatewaytest.ClosedAddr(t)+`
		    predicates: [Path=/refused]
		  - id: slow
		    uri: http://`+slow.Listener.Addr().String()+`
		    predicates: [Path=/slow]
		    response_timeout: 200ms
		  - id: reset
		    uri: http://`+reset+`
		    predicates: [Path=/reset]
		  - id: small
		    uri: http://`+echo.Addr()+`
		    predicates: [Path=/small]
		    max_body_size: 1KiB
		`)
	// A connect timeout needs an address that accepts no connection and does
	// not refuse one either; loopback always refuses at once, and any other
	// address would leave the machine. It is not tested here.
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		chunked bool
		status  int
		reason  string
		route   string
	}{
		{name: "no route", method: "GET", path: "/nowhere", status: 404, reason: "no_route"},
		{name: "connection refused", method: "GET", path: "/refused", status: 502, reason: "upstream_connect_failure", route: "refused"},
		{name: "response timeout", method: "GET", path: "/slow", status: 504, reason: "response_timeout", route: "slow"},
		{name: "reset before response", method: "POST", path: "/reset", body: "x", status: 502, reason: "upstream_reset_before_response", route: "reset"},
		{name: "body over max_body_size", method: "POST", path: "/small", body: strings.Repeat("x", 1025), status: 413, reason: "request_body_too_large", route: "small"},
		{name: "chunked body over max_body_size", method: "POST", path: "/small", body: strings.Repeat("x", 4096), chunked: true, status: 413, reason: "request_body_too_large", route: "small"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body)
				}
			}
			req, _ := http.NewRequest(tc.method, gatewaytest.URL(g, tc.path), body)
			if tc.chunked {
				req.ContentLength = -1
			}
			start := time.Now()
			resp, out := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, out, tc.status)
			}
			if got := resp.Header.Get("X-Sluice-Reason"); got != tc.reason {
				t.Errorf("X-Sluice-Reason %q, want %q", got, tc.reason)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var eb errorBody
			if err := json.Unmarshal(out, &eb); err != nil {
				t.Fatalf("body %q: %v", out, err)
			}
			want := errorBody{Status: tc.status, Error: http.StatusText(tc.status), Reason: tc.reason, Route: tc.route}
			if eb != want {
				t.Errorf("body %+v, want %+v", eb, want)
			}
			if tc.reason == "response_timeout" {
				if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
					t.Errorf("timed out after %v, want about 200ms", d)
				}
			}
		})
	}
	// Cleanups run after the parallel subtests.
	t.Cleanup(func() {
		if n := resetConns.Load(); n != 1 {
			t.Errorf("the resetting backend got %d connections, want 1 (a POST is not retried)", n)
		}
		if n := echo.Hits(); n != 0 {
			t.Errorf("the backend behind max_body_size got %d requests, want none", n)
		}
	})
}

// TestMalformedPath checks that a request target that is not valid
// percent-encoding gets 400, whichever layer refuses it.
func TestMalformedPath(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "")
	for _, target := range []string{"/%zz", "/a%2", "/api/%zzadmin"} {
		t.Run(target, func(t *testing.T) {
			resp, body := gatewaytest.Raw(t, g.Addr(), "GET "+target+" HTTP/1.1\nHost: x\nConnection: close\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got %d %q, want 400", resp.StatusCode, body)
			}
		})
	}
	if be.Hits() != 0 {
		t.Errorf("backend got %d requests, want none", be.Hits())
	}
}

// TestAccessLog checks the access log line of a proxied request and of a
// request the gateway answered itself.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	var logBuf gatewaytest.SafeBuffer
	g := gatewaytest.Start(t, `
		upstreams:
		  backend:
		    endpoints: [`+be.Addr()+`]
		routes:
		  - id: api
		    uri: lb://backend
		    predicates: [Path=/api/**]
		`, gatewaytest.WithLog(&logBuf))
	c := gatewaytest.Client(t)
	req, _ := http.NewRequest(http.MethodPost, gatewaytest.URL(g, "/api/items"), strings.NewReader("hello"))
	resp, body := gatewaytest.Do(t, c, req)
	if resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/missing"), nil)
	resp, errBody := gatewaytest.Do(t, c, req)
	if resp.StatusCode != 404 {
		t.Fatalf("got %d %q", resp.StatusCode, errBody)
	}

	tests := []struct {
		name string
		path string
		want map[string]any
	}{
		{name: "proxied", path: "/api/items", want: map[string]any{
			"method": "POST", "route": "api", "upstream": "backend", "endpoint": be.Addr(),
			"status": float64(200), "reason": "", "bytes_in": float64(5), "bytes_out": float64(len(body)),
		}},
		{name: "no route", path: "/missing", want: map[string]any{
			"method": "GET", "route": "", "upstream": "", "endpoint": "",
			"status": float64(404), "reason": "no_route", "bytes_in": float64(0), "bytes_out": float64(len(errBody)),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var line map[string]any
			// The line is written after the response is sent.
			found := gatewaytest.Eventually(2*time.Second, func() bool {
				for _, l := range logBuf.JSONLines() {
					if l["msg"] == "access" && l["path"] == tc.path {
						line = l
						return true
					}
				}
				return false
			})
			if !found {
				t.Fatalf("no access line for %s in:\n%s", tc.path, logBuf.String())
			}
			for k, want := range tc.want {
				if got, ok := line[k]; !ok || got != want {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			if d, ok := line["duration"].(float64); !ok || d <= 0 {
				t.Errorf("duration = %#v, want a positive number", line["duration"])
			}
		})
	}
	if bytes.Contains([]byte(logBuf.String()), []byte(`"level":"ERROR"`)) {
		t.Errorf("unexpected error in the log:\n%s", logBuf.String())
	}
}

// TestResponseCut checks that a response the backend cuts after its headers
// reaches the client as an error, not as a complete body, and is still
// logged and counted.
func TestResponseCut(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	t.Cleanup(be.Close)
	var logBuf gatewaytest.SafeBuffer
	g := startOne(t, be.Listener.Addr().String(), "", gatewaytest.WithLog(&logBuf))
	// The client sees an error, on the headers or on the body: the headers
	// may still be buffered when the gateway gives up on the connection.
	resp, err := gatewaytest.Client(t).Get(gatewaytest.URL(g, "/cut"))
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("client read %d %q without error, want a cut response", resp.StatusCode, body)
		}
	}
	const reason = "upstream_reset_after_response_started"
	var line map[string]any
	if !gatewaytest.Eventually(2*time.Second, func() bool {
		for _, l := range logBuf.JSONLines() {
			if l["msg"] == "access" && l["path"] == "/cut" {
				line = l
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no access line for the cut response in:\n%s", logBuf.String())
	}
	if line["status"] != float64(200) || line["reason"] != reason || line["bytes_out"] != float64(10) {
		t.Errorf("access line %v, want status 200, reason %s, bytes_out 10", line, reason)
	}
	_, metrics := adminGet(t, g, "/metrics")
	if want := `sluice_requests_total{class="2xx",reason="` + reason + `",route="r",upstream="http://` + be.Listener.Addr().String() + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("no %s in:\n%s", want, grepLines(metrics, "sluice_requests_total"))
	}
}
