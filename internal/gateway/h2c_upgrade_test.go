package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// A cleartext client that asks for HTTP/2 with "Upgrade: h2c" (curl
// --http2, some gRPC stacks) is answered over HTTP/2 through the proxy, and
// the upgrade's own headers do not reach the backend.
func TestListenerH2CUpgrade(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+be.Addr()+`"]
		routes:
		  - id: r
		    uri: lb://b`)
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /up?q=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, X-Drop\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\nX-Drop: secret\r\nX-Keep: yes\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	fr.WriteSettings()
	dec := hpack.NewDecoder(4096, nil)
	var status string
	var body []byte
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
			done = f.StreamID == 1 && f.StreamEnded()
		case *http2.DataFrame:
			if f.StreamID == 1 {
				body = append(body, f.Data()...)
				done = f.StreamEnded()
			}
		}
	}
	if status != "200" {
		t.Fatalf("stream 1: status %s, body %q", status, body)
	}
	seen := gatewaytest.DecodeSeen(t, body)
	if seen.URI != "/up?q=1" || seen.Header["X-Keep"] == nil {
		t.Fatalf("backend saw %+v", seen)
	}
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection", "X-Drop"} {
		if v, ok := seen.Header[k]; ok {
			t.Errorf("backend got %s: %v", k, v)
		}
	}
}
