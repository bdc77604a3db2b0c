package gateway_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// writeCert writes a self-signed certificate for names (its own CA) to dir.
func writeCert(t *testing.T, dir, base string, serial int64, names ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

func echoProto(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TLS termination, SNI, HTTP/2 by ALPN, idle timeout and TCP keepalive in
// one config (an idle handler must not break TLS), then a certificate
// renewed on disk served without a restart.
func TestListenerTLSHTTP2KeepaliveTogether(t *testing.T) {
	dir := t.TempDir()
	apiCert, apiKey, apiX := writeCert(t, dir, "api", 1, "api.example.com")
	wwwCert, wwwKey, wwwX := writeCert(t, dir, "www", 2, "www.example.com")
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`
		idle_timeout: 1s
		keepalive: {enabled: true, idle: 7s, interval: 3s, count: 5}
		tls:
		  certificates:
		    - {cert_file: "`+apiCert+`", key_file: "`+apiKey+`"}
		    - {cert_file: "`+wwwCert+`", key_file: "`+wwwKey+`"}`))
	pool := x509.NewCertPool()
	pool.AddCert(apiX)
	pool.AddCert(wwwX)
	client := func(name string) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	for _, name := range []string{"api.example.com", "www.example.com"} {
		resp, err := client(name).Get("https://" + g.Addr() + "/")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.TLS.PeerCertificates[0].Subject.CommonName != name {
			t.Fatalf("%s: proto %d, cert %s", name, resp.ProtoMajor, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}
	// TLS 1.1 is refused.
	if _, err := tls.Dial("tcp", g.Addr(), &tls.Config{RootCAs: pool, ServerName: "api.example.com", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 handshake accepted")
	}
	// One request over HTTP/1.1, then the connection idles.
	c, err := tls.Dial("tcp", g.Addr(), &tls.Config{RootCAs: pool, ServerName: "api.example.com", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if ka := resp.Header.Get("Keep-Alive"); ka != "timeout=1" {
		t.Fatalf("Keep-Alive %q, want timeout=1", ka)
	}
	// The idle timeout closes an idle connection after 1s.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < 800*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("idle connection closed after %v, want about 1s", d)
	}
	// A renewed certificate is served within a second or two, no restart.
	time.Sleep(1100 * time.Millisecond) // a different mtime second
	_, _, newX := writeCert(t, dir, "api", 3, "api.example.com")
	pool.AddCert(newX)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", g.Addr(), &tls.Config{RootCAs: pool, ServerName: "api.example.com"})
		if err == nil {
			serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
			conn.Close()
			if serial == 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("renewed certificate not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The TCP keepalive settings reach the accepted socket (getsockopt).
func TestListenerTCPKeepalive(t *testing.T) {
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`keepalive: {enabled: true, idle: 7s, interval: 3s, count: 5}`))
	// The gateway runs in this process: its accepted socket is one of our
	// file descriptors, the one whose peer is our client's address.
	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 512)
	conn.Read(buf)
	fds := acceptedSockets(t, conn.LocalAddr().String())
	if len(fds) == 0 {
		t.Skip("cannot find the accepted socket in /proc/self/fd")
	}
	for _, fd := range fds {
		idle, _ := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		intvl, _ := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		cnt, _ := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		on, _ := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		if on == 1 && idle == 7 && intvl == 3 && cnt == 5 {
			return
		}
	}
	t.Fatal("no accepted socket with keepalive 7s/3s/5")
}

// acceptedSockets returns duplicated descriptors of this process's TCP
// sockets whose peer is peer (the gateway's side of a client connection).
func acceptedSockets(t *testing.T, peer string) []int {
	entries, _ := os.ReadDir("/proc/self/fd")
	var out []int
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil {
			continue
		}
		sa, err := syscall.Getpeername(fd)
		if err != nil {
			continue
		}
		in4, ok := sa.(*syscall.SockaddrInet4)
		if !ok {
			continue
		}
		addr := net.JoinHostPort(net.IP(in4.Addr[:]).String(), fmt.Sprint(in4.Port))
		if addr == peer {
			out = append(out, fd)
		}
	}
	return out
}

// h2c with prior knowledge (gRPC clients) on a plain listener, by default.
func TestListenerH2C(t *testing.T) {
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`)
	tr := &http2.Transport{AllowHTTP: true}
	tr.DialTLS = func(network, addr string, _ *tls.Config) (net.Conn, error) { return net.Dial(network, addr) }
	resp, err := (&http.Client{Transport: tr}).Get("http://" + g.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "ok" {
		t.Fatalf("proto %d body %q", resp.ProtoMajor, body)
	}
}

// Client certificates: required and verified when client_ca_file is set.
func TestListenerClientCertificates(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvX := writeCert(t, dir, "srv", 1, "api.example.com")
	caCert, caKey, _ := writeCert(t, dir, "client", 2, "client")
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`
		tls:
		  certificates: [{cert_file: "`+srvCert+`", key_file: "`+srvKey+`"}]
		  client_ca_file: "`+caCert+`"`))
	pool := x509.NewCertPool()
	pool.AddCert(srvX)
	pair, err := tls.LoadX509KeyPair(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	get := func(certs []tls.Certificate) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "api.example.com", Certificates: certs}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + g.Addr() + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(nil); err == nil {
		t.Fatal("request without a client certificate accepted")
	}
	if err := get([]tls.Certificate{pair}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
}

// max_connections: connections beyond the cap are refused at once.
func TestListenerMaxConnections(t *testing.T) {
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`max_connections: 3`))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond)
	refused := 0
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			refused++
			continue
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := c.Read(make([]byte, 1)); err != nil {
			refused++
		}
		c.Close()
	}
	if refused != 20 {
		t.Fatalf("%d of 20 connections over the cap refused", refused)
	}
	held[0].Close()
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("a connection under the cap was refused: %v", err)
	}
}

// Slowloris: headers trickled a byte at a time are cut off at
// read_header_timeout; oversized headers get 431.
func TestListenerSlowlorisAndHeaderLimit(t *testing.T) {
	backend := echoProto(t)
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: r
		    uri: lb://b`, gatewaytest.WithServer(`
		read_header_timeout: 500ms
		max_header_bytes: 4KiB`))
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	req := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	cut := false
	for i := 0; i < len(req) && time.Since(start) < 3*time.Second; i++ {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			cut = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !cut {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := c.Read(make([]byte, 1))
		cut = err != nil
	}
	if !cut {
		t.Fatal("a client trickling headers was not cut off")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cut after %v, want about 500ms", d)
	}

	big, _ := http.NewRequest("GET", "http://"+g.Addr()+"/", nil)
	big.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	resp, err := http.DefaultClient.Do(big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %d, want 431", resp.StatusCode)
	}
}
