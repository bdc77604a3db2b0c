package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// Upstream TLS: HTTP/1.1 and HTTP/2 (ALPN h2) to a TLS backend, verified
// against a CA file, with insecure_skip_verify, and refused with the wrong CA.
func TestUpstreamTLS(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%d tls=%v", r.ProtoMajor, r.TLS != nil)
	}))
	backend.EnableHTTP2 = true
	backend.StartTLS()
	defer backend.Close()
	addr := backend.Listener.Addr().String()

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	// A CA that did not sign the backend's certificate.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(dir, "wrong.pem")
	os.WriteFile(wrongCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)

	tests := []struct {
		name     string
		protocol string
		tls      string
		status   int
		body     string
	}{
		{"http1 with CA file", "http1", `{ca_file: "` + ca + `", server_name: example.com}`, 200, "proto=1 tls=true"},
		{"h2 with CA file", "h2", `{ca_file: "` + ca + `", server_name: example.com}`, 200, "proto=2 tls=true"},
		{"insecure_skip_verify", "http1", `{insecure_skip_verify: true}`, 200, "proto=1 tls=true"},
		{"wrong CA", "http1", `{ca_file: "` + wrongCA + `", server_name: example.com}`, 502, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.Start(t, `
				upstreams:
				  secure:
				    endpoints: ["`+addr+`"]
				    protocol: `+tc.protocol+`
				    tls: `+tc.tls+`
				routes:
				  - id: r
				    uri: lb://secure`)
			resp, body := gatewaytest.Get(t, g, "/x")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
			if tc.status == 502 && resp.Header.Get("X-Sluice-Reason") != "upstream_connect_failure" {
				t.Fatalf("reason %q", resp.Header.Get("X-Sluice-Reason"))
			}
		})
	}
}
