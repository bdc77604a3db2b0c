// Package h2ctest is the client side of an HTTP/1.1 → h2c upgrade (RFC 7540
// §3.2) for tests: the request, the 101, the client preface, and reading a
// stream's response off the frames. Go's HTTP/2 client does not upgrade.
package h2ctest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Upgrade sends head (an HTTP/1.1 request's header block, without the
// upgrade's own headers and without the final blank line) asking for h2c,
// checks the 101 and returns a framer on the upgraded connection after the
// client preface and SETTINGS. The connection is closed by t.Cleanup.
func Upgrade(t testing.TB, addr, head string) *http2.Framer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, head+"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n")
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
	return fr
}

// Response reads frames until stream id ends and returns its :status and
// body; goaway reports whether a GOAWAY came before its end. Like strict
// clients, it fails on a connection-specific header field.
func Response(t testing.TB, fr *http2.Framer, id uint32) (status, body string, goaway bool) {
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
				switch hf.Name {
				case ":status":
					status = hf.Value
				case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
					// RFC 9113 §8.2.2: strict clients (nghttp2, curl) reset the stream.
					t.Fatalf("stream %d: connection-specific header %s: %s in an HTTP/2 response", id, hf.Name, hf.Value)
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

// PriorKnowledge opens an h2c connection to addr with prior knowledge (the
// client preface, then SETTINGS) and returns its framer. The connection is
// closed by t.Cleanup.
func PriorKnowledge(t testing.TB, addr string) *http2.Framer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// Request writes a HEADERS frame that opens and ends stream id, its fields
// (name, value pairs, pseudo-headers first) encoded verbatim with hpack: no
// check of what they hold, as a hostile client would send them.
func Request(t testing.TB, fr *http2.Framer, id uint32, fields ...string) {
	t.Helper()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
}

// Status reads frames until stream id is answered and returns its :status,
// or "reset" when the server resets the stream (RST_STREAM) or ends the
// connection (GOAWAY) instead.
func Status(t testing.TB, fr *http2.Framer, id uint32) string {
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
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return "reset"
			}
		case *http2.GoAwayFrame:
			return "reset"
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
					return hf.Value
				}
			}
		}
	}
}
