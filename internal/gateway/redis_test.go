package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/redisconn/redistest"
)

// TestRedisReload checks that the shared Redis client survives a reload that
// leaves the redis block alone, is replaced (and the old one closed) when the
// block changes, and that its metrics are on the admin port.
func TestRedisReload(t *testing.T) {
	rs := redistest.Start(t)
	be := gatewaytest.NewEcho(t, "be")
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	write := func(redisBlock, limit string) {
		t.Helper()
		data := gatewaytest.Header("", 0) + redisBlock + "\n" + gatewaytest.Dedent(`
			routes:
			  - id: r
			    uri: http://`+be.Addr()+`
			    filters: ["RequestRateLimiter=`+limit+`"]
			`)
		if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("redis: {address: "+rs.Addr+"}", "100,100,client_ip")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.StartConfig(file, cfg, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })
	if resp, _ := gatewaytest.Get(t, g, "/"); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "99" {
		t.Fatalf("status %d, remaining %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	first := g.Runtime().Redis

	write("redis: {address: "+rs.Addr+"}", "200,200,client_ip")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if g.Runtime().Redis != first {
		t.Error("an unchanged redis block got a new client on reload")
	}

	write("redis: {address: "+rs.Addr+", pool_size: 4}", "200,200,client_ip")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if g.Runtime().Redis == first {
		t.Error("a changed redis block kept the old client")
	}
	if err := first.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("the replaced client still works (%v): it should be closed", err)
	}
	if resp, _ := gatewaytest.Get(t, g, "/"); resp.StatusCode != 200 {
		t.Fatalf("after reload: status %d", resp.StatusCode)
	}

	resp, err := http.Get("http://" + g.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`sluice_redis_command_duration_seconds_bucket{command="evalsha"`, `sluice_redis_pool_connections{state="idle"}`,
		`sluice_redis_pool_acquisitions_total{result="miss"}`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	rs.Kill()
	gatewaytest.Get(t, g, "/") // fails open, counts an error
	resp, err = http.Get("http://" + g.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `sluice_redis_errors_total{kind="connection"}`) {
		t.Errorf("/metrics lacks a connection error count after Redis died:\n%s", grep(string(body), "sluice_redis"))
	}
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRedisTLSAndAuth connects to a redis-server that serves only TLS and
// requires a password, with the redis block's tls.ca_file and password.
func TestRedisTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	rs := redistest.Start(t, "--port", "0", "--tls-port", "{port}", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", certFile, "--tls-auth-clients", "no", "--requirepass", "s3cret")
	be := gatewaytest.NewEcho(t, "be")
	tests := []struct {
		desc          string
		redis         string
		wantRemaining string
	}{
		{desc: "TLS with the CA and the password", redis: `{address: ` + rs.Addr + `, password: s3cret, tls: {enabled: true, ca_file: ` + certFile + `}}`, wantRemaining: "4"},
		{desc: "wrong password: the limiter cannot decide and allows", redis: `{address: ` + rs.Addr + `, password: nope, tls: {enabled: true, ca_file: ` + certFile + `}}`, wantRemaining: "-1"},
		{desc: "plain text to a TLS port: allows", redis: `{address: ` + rs.Addr + `, password: s3cret}`, wantRemaining: "-1"},
		{desc: "TLS without the CA: allows", redis: `{address: ` + rs.Addr + `, password: s3cret, tls: {enabled: true}}`, wantRemaining: "-1"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			g := gatewaytest.Start(t, `
				redis: `+tc.redis+`
				routes:
				  - id: r-`+strings.ReplaceAll(tc.wantRemaining, "-", "m")+`
				    uri: http://`+be.Addr()+`
				    filters: [{name: RequestRateLimiter, args: {replenish_rate: 5, burst_capacity: 5, key_resolver: "header:X-K", limiter: redis, timeout: 500ms}}]
				`)
			req, _ := http.NewRequest("GET", gatewaytest.URL(g, "/"), nil)
			req.Header.Set("X-K", tc.desc)
			resp, _ := gatewaytest.Do(t, gatewaytest.Client(t), req)
			if got := resp.Header.Get("X-RateLimit-Remaining"); resp.StatusCode != 200 || got != tc.wantRemaining {
				t.Errorf("status %d, X-RateLimit-Remaining %q; want 200, %q", resp.StatusCode, got, tc.wantRemaining)
			}
		})
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
