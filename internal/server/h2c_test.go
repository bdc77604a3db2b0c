package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/testkit/h2ctest"
)

// A plain listener with h2c upgrades "Upgrade: h2c": the request is
// answered as stream 1 over HTTP/2, and handlers see it as HTTP/2.
func TestH2CUpgrade(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.Proto+" "+r.URL.Path)
	})
	s, err := Listen(Options{Addr: "127.0.0.1:0", H2C: true, ReadHeaderTimeout: 5 * time.Second}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()

	fr := h2ctest.Upgrade(t, s.Addr().String(), "GET /up HTTP/1.1\r\nHost: x")
	if st, body, _ := h2ctest.Response(t, fr, 1); st != "200" || body != "HTTP/2.0 /up" {
		t.Fatalf("stream 1: %s %q", st, body)
	}

	// An upgraded connection with a stream in flight at Shutdown gets a
	// GOAWAY, its stream finishes, and Shutdown waits for it.
	fr2 := h2ctest.Upgrade(t, s.Addr().String(), "GET /slow HTTP/1.1\r\nHost: x")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with an upgraded stream in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	st, body, goaway := h2ctest.Response(t, fr2, 1)
	if st != "200" || !strings.HasSuffix(body, "/slow") {
		t.Fatalf("in-flight stream: %s %q", st, body)
	}
	for !goaway { // the GOAWAY may follow the response
		f, err := fr2.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before the connection ended: %v", err)
		}
		_, goaway = f.(*http2.GoAwayFrame)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
