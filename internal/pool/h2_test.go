package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startH2C serves h on 127.0.0.1 over HTTP/2 with prior knowledge.
func startH2C(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Concurrent first requests to an HTTP/2 endpoint with max_connections 1
// share one connection: the cap is a slot taken before dialling.
func TestH2ConcurrentFirstRequestsRespectMaxConnections(t *testing.T) {
	addr := startH2C(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("ok"))
	})
	p := New(Options{Addr: addr, Protocol: H2C, MaxConnections: 1})
	defer p.Drain(nil)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			resp, err := p.RoundTrip(context.Background(), req, time.Now().Add(5*time.Second))
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if s := p.Stats(); s.Opened != 1 || failed.Load() != 0 {
		t.Fatalf("opened %d connections (max_connections 1), %d requests failed", s.Opened, failed.Load())
	}
}

// Draining while HTTP/2 requests start is free of data races (go test -race).
func TestH2DrainDuringRequestsIsRaceFree(t *testing.T) {
	addr := startH2C(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	p := New(Options{Addr: addr, Protocol: H2C})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				resp, err := p.RoundTrip(context.Background(), req, time.Time{})
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	p.Drain(nil)
	wg.Wait()
	p.Stats()
}

// stalledBody is a request body whose client goes quiet: each Read takes
// stall. It knows whether anyone is reading it.
type stalledBody struct {
	stall   time.Duration
	reading atomic.Int64
	reads   atomic.Int64
}

func (b *stalledBody) Read(p []byte) (int, error) {
	b.reading.Add(1)
	defer b.reading.Add(-1)
	b.reads.Add(1)
	time.Sleep(b.stall)
	return copy(p, "x"), nil
}

func (b *stalledBody) Close() error { return nil }

// When an HTTP/2 round trip fails, nobody reads the request body any more
// once RoundTrip has returned: a retry may send the same body again
// without two goroutines reading it. (x/net returns from a cancelled
// stream while its writer is still inside the body's Read.)
func TestH2FailedRoundTripReleasesRequestBody(t *testing.T) {
	addr := startH2C(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	p := New(Options{Addr: addr, Protocol: H2C})
	defer p.Drain(nil)
	body := &stalledBody{stall: time.Second}
	req, _ := http.NewRequest("POST", "http://"+addr+"/", body)
	req.ContentLength = -1
	_, err := p.RoundTrip(context.Background(), req, time.Now().Add(300*time.Millisecond))
	var pe *Error
	if !errors.As(err, &pe) || strings.Contains(err.Error(), "client_body") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := body.reading.Load(); n != 0 {
		t.Fatalf("the request body is still being read after RoundTrip returned %v", err)
	}
	reads := body.reads.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := body.reads.Load(); n != reads {
		t.Fatalf("the request body was read %d more times after RoundTrip returned", n-reads)
	}
}
