package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// gRPC-style bidirectional streaming over HTTP/2 end to end: the client sends
// a message, waits for the echo, sends the next; the backend (h2c) answers
// each as it arrives and ends with trailers. Downstream over h2c and over TLS.
func TestBidirectionalStreamingHTTP2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	backend := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want HTTP/2", 400)
			return
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			fmt.Fprintf(w, "echo %s\n", sc.Text())
			w.(http.Flusher).Flush()
		}
		w.Header().Set("Grpc-Status", "0")
	})}
	go backend.Serve(ln)
	defer backend.Close()

	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "api", 1, "api.example.com")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	upstream := `
		upstreams:
		  grpc:
		    endpoints: ["` + ln.Addr().String() + `"]
		    protocol: h2c
		routes:
		  - id: stream
		    uri: lb://grpc`
	tests := []struct {
		name   string
		server string
		scheme string
		client *http2.Transport
	}{
		{"h2c", "", "http", &http2.Transport{AllowHTTP: true, DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		}}},
		{"tls", `
		tls:
		  certificates: [{cert_file: "` + certFile + `", key_file: "` + keyFile + `"}]`, "https",
			&http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "api.example.com"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.Start(t, upstream, gatewaytest.WithServer(tc.server))
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", tc.scheme+"://"+g.Addr()+"/svc.Echo/Chat", pr)
			req.Header.Set("Content-Type", "application/grpc")
			type result struct {
				resp *http.Response
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := tc.client.RoundTrip(req)
				got <- result{resp, err}
			}()
			// The first message goes out before any response exists.
			fmt.Fprintf(pw, "one\n")
			var res result
			select {
			case res = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("no response headers while the request stream is open")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			defer res.resp.Body.Close()
			br := bufio.NewReader(res.resp.Body)
			for _, m := range []string{"one", "two", "three"} {
				if m != "one" {
					fmt.Fprintf(pw, "%s\n", m)
				}
				line, err := br.ReadString('\n')
				if err != nil || strings.TrimSpace(line) != "echo "+m {
					t.Fatalf("got %q, %v; want echo %s", line, err, m)
				}
			}
			pw.Close()
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("unexpected tail %q", rest)
			}
			if s := res.resp.Trailer.Get("Grpc-Status"); s != "0" {
				t.Fatalf("trailer Grpc-Status %q, want 0 (trailers %v)", s, res.resp.Trailer)
			}
		})
	}
}
