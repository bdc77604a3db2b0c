package gateway_test

import (
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/testkit/h2ctest"
)

// A cleartext client that asks for HTTP/2 with "Upgrade: h2c" (curl
// --http2, some gRPC stacks) is answered over HTTP/2 through the proxy; the
// upgrade's own headers do not reach the backend, and a header that
// Connection names is still removed.
func TestListenerH2CUpgrade(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "")
	fr := h2ctest.Upgrade(t, g.Addr(), "GET /up?q=1 HTTP/1.1\r\nHost: x\r\nConnection: X-Drop\r\nX-Drop: secret\r\nX-Keep: yes")
	status, body, _ := h2ctest.Response(t, fr, 1)
	if status != "200" {
		t.Fatalf("stream 1: status %s, body %q", status, body)
	}
	seen := gatewaytest.DecodeSeen(t, []byte(body))
	if seen.URI != "/up?q=1" || seen.Header["X-Keep"] == nil {
		t.Fatalf("backend saw %+v", seen)
	}
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection", "X-Drop"} {
		if v, ok := seen.Header[k]; ok {
			t.Errorf("backend got %s: %v", k, v)
		}
	}
}
