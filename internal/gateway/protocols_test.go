package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/testkit/h2ctest"
)

// Open client connections are counted by protocol, per listener: HTTP/1.1,
// h2 over TLS, h2c by prior knowledge and by upgrade.
func TestDownstreamConnectionsByProtocol(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "api", 1, "api.example.com")
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "", gatewaytest.WithServer(`
		listeners:
		  - name: tls
		    listen: "127.0.0.1:0"
		    tls: {certificates: [{cert_file: "`+certFile+`", key_file: "`+keyFile+`"}]}`))
	plain, tlsAddr := g.Addr(), g.ListenerAddr("tls")
	get := func(c *http.Client, url string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// HTTP/1.1, kept alive.
	h1 := gatewaytest.Client(t)
	get(h1, "http://"+plain+"/x")
	// h2c with prior knowledge.
	h2c := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}
	defer h2c.CloseIdleConnections()
	get(&http.Client{Transport: h2c, Timeout: 5 * time.Second}, "http://"+plain+"/x")
	// h2c by upgrade.
	h2ctest.Response(t, h2ctest.Upgrade(t, plain, "GET /x HTTP/1.1\r\nHost: x"), 1)
	// h2 over TLS.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "api.example.com"}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	get(&http.Client{Transport: h2, Timeout: 5 * time.Second}, "https://"+tlsAddr+"/x")
	// Not a request yet.
	idle, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	want := map[string]float64{
		`listener="` + plain + `",protocol="http/1.1"`: 1,
		`listener="` + plain + `",protocol="h2c"`:      2,
		`listener="` + plain + `",protocol="none"`:     1,
		`listener="tls",protocol="h2"`:                 1,
		`listener="tls",protocol="http/1.1"`:           0,
	}
	ok := gatewaytest.Eventually(3*time.Second, func() bool {
		for labels, n := range want {
			if sampleSum(t, g, "sluice_downstream_connections_by_protocol", labels) != n {
				return false
			}
		}
		return true
	})
	if !ok {
		for labels, n := range want {
			t.Errorf("%s: %v, want %v", labels, sampleSum(t, g, "sluice_downstream_connections_by_protocol", labels), n)
		}
	}
}
