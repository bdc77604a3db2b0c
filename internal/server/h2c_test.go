package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// upgradeH2C sends an HTTP/1.1 request asking for h2c, checks the 101, and
// returns a framer on the upgraded connection after the client preface.
func upgradeH2C(t *testing.T, addr, path string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "h2c" {
		t.Fatalf("upgrade answered %d %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// streamResponse reads frames until stream id ends, returning its :status
// and body; goaway reports whether a GOAWAY came first.
func streamResponse(t *testing.T, fr *http2.Framer, id uint32) (status, body string, goaway bool) {
	t.Helper()
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goaway = true
		case *http2.HeadersFrame:
			if f.StreamID != id {
				continue
			}
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
			if f.StreamEnded() {
				return status, body, goaway
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body += string(f.Data())
				if f.StreamEnded() {
					return status, body, goaway
				}
			}
		}
	}
}

// A plain listener with h2c upgrades "Upgrade: h2c": the request is
// answered as stream 1 over HTTP/2 (the request itself keeps its
// HTTP/1.1 form: RFC 7540 §3.2).
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

	_, fr := upgradeH2C(t, s.Addr().String(), "/up")
	if st, body, _ := streamResponse(t, fr, 1); st != "200" || !strings.HasSuffix(body, " /up") {
		t.Fatalf("stream 1: %s %q", st, body)
	}

	// An upgraded connection with a stream in flight at Shutdown gets a
	// GOAWAY, its stream finishes, and Shutdown waits for it.
	_, fr2 := upgradeH2C(t, s.Addr().String(), "/slow")
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
	st, body, goaway := streamResponse(t, fr2, 1)
	if st != "200" || !strings.HasSuffix(body, "/slow") {
		t.Fatalf("in-flight stream: %s %q", st, body)
	}
	if !goaway {
		// The GOAWAY may follow the response.
		for {
			f, err := fr2.ReadFrame()
			if err != nil {
				t.Fatalf("no GOAWAY before the connection ended: %v", err)
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				break
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
