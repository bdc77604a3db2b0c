package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// switchBackend answers with the status in its status field.
type switchBackend struct {
	*httptest.Server
	status atomic.Int64
	hits   atomic.Int64
}

func newSwitchBackend(t *testing.T) *switchBackend {
	b := &switchBackend{}
	b.status.Store(200)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", "main")
		w.WriteHeader(int(b.status.Load()))
		w.Write([]byte("main"))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *switchBackend) Addr() string { return b.Listener.Addr().String() }

// TestFilterCircuitBreaker walks a breaker through its states, through a
// real gateway: closed, tripped by status codes, open (the backend is spared
// and the fallback route answers, with FallbackHeaders), half-open trials
// that fail and reopen it, trials that succeed and close it.
func TestFilterCircuitBreaker(t *testing.T) {
	t.Parallel()
	main := newSwitchBackend(t)
	fb := gatewaytest.NewEcho(t, "fallback")
	g := gatewaytest.Start(t, `
		routes:
		  - id: api
		    uri: http://`+main.Addr()+`
		    predicates: [Path=/api/**]
		    filters:
		      - name: CircuitBreaker
		        args:
		          name: cb
		          fallbackUri: forward:/fallback
		          statusCodes: [500, BAD_GATEWAY]
		          slidingWindowSize: 4
		          minimumNumberOfCalls: 4
		          failureRateThreshold: 75
		          waitDurationInOpenState: 300ms
		          permittedNumberOfCallsInHalfOpenState: 2
		  - id: fallback
		    uri: http://`+fb.Addr()+`
		    predicates: [Path=/fallback]
		    filters: [FallbackHeaders]
		`)
	type step struct {
		name        string
		status      int           // what the main backend answers from now on
		sleep       time.Duration // before the requests
		requests    int
		wantBackend string // "main" or "fallback" for each request
		wantHits    int64  // requests that reached main during the step
		wantType    string // Execution-Exception-Type seen by the fallback
	}
	steps := []step{
		{name: "closed and healthy", status: 200, requests: 1, wantBackend: "main", wantHits: 1},
		{name: "status codes trip the fallback", status: 500, requests: 1, wantBackend: "fallback", wantHits: 1, wantType: "circuitbreaker.StatusError"},
		{name: "a second listed status", status: 502, requests: 1, wantBackend: "fallback", wantHits: 1, wantType: "circuitbreaker.StatusError"},
		{name: "unlisted status passes", status: 503, requests: 1, wantBackend: "main", wantHits: 1},
		// Window: ok, 500, 502, 503 holds 2 failures of 4 (50% < 75%); after
		// this failure it holds 500, 502, 503, 500: 75%, and the breaker opens.
		{name: "failure rate reached opens", status: 500, requests: 1, wantBackend: "fallback", wantHits: 1},
		{name: "open spares the backend", status: 200, requests: 5, wantBackend: "fallback", wantHits: 0, wantType: "circuitbreaker.OpenError"},
		{name: "half-open trials fail and reopen", status: 500, sleep: 350 * time.Millisecond, requests: 4, wantBackend: "fallback", wantHits: 2},
		{name: "half-open trials succeed and close", status: 200, sleep: 350 * time.Millisecond, requests: 2, wantBackend: "main", wantHits: 2},
		{name: "closed again", status: 200, requests: 3, wantBackend: "main", wantHits: 3},
	}
	c := gatewaytest.Client(t)
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			main.status.Store(int64(s.status))
			time.Sleep(s.sleep)
			before := main.hits.Load()
			for i := range s.requests {
				req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/api/x"), nil)
				resp, body := gatewaytest.Do(t, c, req)
				got := resp.Header.Get("X-Backend")
				if got != s.wantBackend {
					t.Fatalf("request %d: answered by %q (%d %q), want %q", i, got, resp.StatusCode, body, s.wantBackend)
				}
				if got == "fallback" {
					seen := gatewaytest.DecodeSeen(t, body)
					if seen.Path != "/fallback" {
						t.Errorf("fallback saw path %q", seen.Path)
					}
					if s.wantType != "" && (seen.Header["Execution-Exception-Type"] == nil || seen.Header["Execution-Exception-Type"][0] != s.wantType) {
						t.Errorf("fallback saw Execution-Exception-Type %q, want %q", seen.Header["Execution-Exception-Type"], s.wantType)
					}
					if seen.Header["Execution-Exception-Message"] == nil || seen.Header["Root-Cause-Exception-Type"] == nil {
						t.Errorf("fallback headers missing: %v", seen.Header)
					}
				}
			}
			if hits := main.hits.Load() - before; hits != s.wantHits {
				t.Errorf("main backend got %d requests, want %d", hits, s.wantHits)
			}
		})
		if !ok {
			break
		}
	}
}

// TestFilterCircuitBreakerEdges covers a breaker without fallback, transport
// failures, a URL fallback and a forward loop.
func TestFilterCircuitBreakerEdges(t *testing.T) {
	t.Parallel()
	fb := gatewaytest.NewEcho(t, "fallback")
	dead := gatewaytest.ClosedAddr(t)
	tests := []struct {
		name       string
		uri        string
		args       string
		statuses   []int  // status of each request, in order
		lastReason string // X-Sluice-Reason of the last answer
		lastFrom   string // X-Backend of the last answer
	}{
		{name: "no fallback: connection failures, then 503 circuit_open",
			uri: "http://" + dead, args: `{name: c, consecutiveFailures: 2, waitDurationInOpenState: 1m}`,
			statuses: []int{502, 502, 503, 503}, lastReason: "circuit_open"},
		{name: "no fallback: a listed status passes through while counting",
			uri: "http://" + fb.Addr(), args: `{name: c, statusCodes: [200], consecutiveFailures: 3, waitDurationInOpenState: 1m}`,
			statuses: []int{200, 200, 200, 503}, lastReason: "circuit_open"},
		{name: "URL fallback answers for a dead backend",
			uri: "http://" + dead, args: `{name: c, fallbackUri: "http://` + fb.Addr() + `/fb"}`,
			statuses: []int{200, 200}, lastFrom: "fallback"},
		{name: "a forward to itself stops with 508",
			uri: "http://" + dead, args: `{name: c, fallbackUri: "forward:/loop/again"}`,
			statuses: []int{508}, lastReason: "forward_loop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: `+tc.uri+`
				    predicates: [Path=/loop/**]
				    retry: {attempts: 1}
				    filters: [{name: CircuitBreaker, args: `+tc.args+`}]
				`)
			c := gatewaytest.Client(t)
			var resp *http.Response
			for i, want := range tc.statuses {
				req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/loop/x"), nil)
				var body []byte
				resp, body = gatewaytest.Do(t, c, req)
				if resp.StatusCode != want {
					t.Fatalf("request %d: %d %q, want %d", i, resp.StatusCode, body, want)
				}
			}
			if got := resp.Header.Get("X-Sluice-Reason"); tc.lastReason != "" && got != tc.lastReason {
				t.Errorf("reason %q, want %q", got, tc.lastReason)
			}
			if got := resp.Header.Get("X-Backend"); tc.lastFrom != "" && got != tc.lastFrom {
				t.Errorf("answered by %q, want %q", got, tc.lastFrom)
			}
		})
	}
}

// TestFilterRetry checks that Spring's Retry arguments reach the route's
// retry policy, and that the policy's safety rules still hold.
func TestFilterRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		filter   string
		method   string
		failures int64 // first answers that are 503
		want     int   // status the client gets
		wantHits int64
	}{
		{name: "retries a 5xx GET (default series SERVER_ERROR)", filter: "Retry=3", method: "GET", failures: 2, want: 200, wantHits: 3},
		{name: "gives up after retries", filter: "Retry=2", method: "GET", failures: 5, want: 503, wantHits: 3},
		{name: "retries=0 means one try", filter: "Retry=0", method: "GET", failures: 1, want: 503, wantHits: 1},
		{name: "statuses narrow what is retried", filter: `{name: Retry, args: {retries: 3, statuses: [BAD_GATEWAY], series: []}}`, method: "GET", failures: 1, want: 503, wantHits: 1},
		{name: "series CLIENT_ERROR does not retry 503", filter: `{name: Retry, args: {retries: 3, series: [CLIENT_ERROR]}}`, method: "GET", failures: 1, want: 503, wantHits: 1},
		{name: "methods default GET: DELETE not retried", filter: "Retry=3", method: "DELETE", failures: 1, want: 503, wantHits: 1},
		{name: "methods lists DELETE", filter: `"Retry=3,SERVICE_UNAVAILABLE,DELETE"`, method: "DELETE", failures: 1, want: 200, wantHits: 2},
		{name: "POST in methods is still never replayed after a response", filter: `{name: Retry, args: {retries: 3, methods: [GET, POST]}}`, method: "POST", failures: 1, want: 503, wantHits: 1},
		{name: "backoff", filter: `{name: Retry, args: {retries: 2, backoff: {firstBackoff: 10ms, maxBackoff: 50ms, factor: 2, basedOnPreviousValue: false}}}`, method: "GET", failures: 2, want: 200, wantHits: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) <= tc.failures {
					w.WriteHeader(503)
					return
				}
				w.Write([]byte("ok"))
			}))
			t.Cleanup(be.Close)
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: `+be.URL+`
				    retry: {attempts: 1, budget_percent: 100, min_retries: 10}
				    filters: [`+tc.filter+`]
				`)
			req, _ := http.NewRequest(tc.method, gatewaytest.URL(g, "/x"), nil)
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d %q, want %d", resp.StatusCode, body, tc.want)
			}
			if hits.Load() != tc.wantHits {
				t.Errorf("backend got %d requests, want %d", hits.Load(), tc.wantHits)
			}
		})
	}
}

// TestFilterRetryMethodsNarrowResets checks that Retry's methods also
// narrow the retries after a failure that may have reached the backend (a
// reset after the request was sent), and never those of a request that
// provably did not (a refused connection).
func TestFilterRetryMethodsNarrowResets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		filter   string
		method   string
		wantHits int64
	}{
		{name: "GET is retried after a reset", filter: "Retry=2", method: "GET", wantHits: 3},
		{name: "DELETE, not in methods, is not", filter: "Retry=2", method: "DELETE", wantHits: 1},
		{name: "DELETE in methods is", filter: `{name: Retry, args: {retries: 2, methods: [GET, DELETE]}}`, method: "DELETE", wantHits: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			addr := gatewaytest.RawBackend(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				hits.Add(1)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // reset, not a clean close
				}
			})
			g := gatewaytest.Start(t, `
				routes:
				  - id: r
				    uri: http://`+addr+`
				    retry: {attempts: 1, budget_percent: 100, min_retries: 10, backoff: {base: 1ms, max: 2ms}}
				    filters: [`+tc.filter+`]
				`)
			req, _ := http.NewRequest(tc.method, gatewaytest.URL(g, "/x"), nil)
			resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d %q, want 502", resp.StatusCode, body)
			}
			if hits.Load() != tc.wantHits {
				t.Errorf("backend read %d requests, want %d", hits.Load(), tc.wantHits)
			}
		})
	}
}

// TestCircuitBreakerFallbackKeepsBody: a POST that fails over to a
// forward: fallback reaches the fallback route with its whole body, whether
// the backend read it before failing (a status in statusCodes), never took
// it (connection refused), or the circuit was open; a body the backend read
// beyond what is kept for the fallback is a 502, not a cut body.
func TestCircuitBreakerFallbackKeepsBody(t *testing.T) {
	t.Parallel()
	reads := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // reads it all, then fails
		w.WriteHeader(500)
	}))
	t.Cleanup(reads.Close)
	dead := gatewaytest.ClosedAddr(t)
	fb := gatewaytest.NewEcho(t, "fallback")
	g := gatewaytest.Start(t, `
		routes:
		  - id: reads
		    uri: http://`+reads.Listener.Addr().String()+`
		    predicates: [Path=/reads/**]
		    filters: ["CircuitBreaker=r,forward:/fallback,500"]
		  - id: dead
		    uri: http://`+dead+`
		    predicates: [Path=/dead/**]
		    filters: ["CircuitBreaker=d,forward:/fallback"]
		  - id: fallback
		    uri: http://`+fb.Addr()+`
		    predicates: [Path=/fallback]
		`)
	c := gatewaytest.Client(t)
	for _, tc := range []struct {
		path string
		size int
		want int
	}{
		{"/reads/x", 100 << 10, 200}, {"/dead/x", 100 << 10, 200}, {"/dead/x", 1 << 20, 200}, {"/reads/x", 1 << 20, 502},
	} {
		body := bytes.Repeat([]byte("b"), tc.size)
		req, _ := http.NewRequest(http.MethodPost, gatewaytest.URL(g, tc.path), bytes.NewReader(body))
		resp, got := gatewaytest.Do(t, c, req)
		if resp.StatusCode != tc.want {
			t.Errorf("POST %s (%d bytes): %d %q, want %d", tc.path, tc.size, resp.StatusCode, got, tc.want)
			continue
		}
		if tc.want != 200 {
			continue
		}
		seen := gatewaytest.DecodeSeen(t, got)
		sum := sha256.Sum256(body)
		if seen.Path != "/fallback" || seen.BodyLen != int64(len(body)) || seen.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("POST %s (%d bytes): the fallback saw %s with %d bytes (sha %s…)", tc.path, tc.size, seen.Path, seen.BodyLen, seen.BodySHA256[:min(8, len(seen.BodySHA256))])
		}
	}
}
