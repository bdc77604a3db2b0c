package gateway_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// Trailers reach the client whether or not the backend announced them in a
// Trailer header: from an HTTP/1.1 chunked backend and from an HTTP/2 one,
// to an HTTP/1.1 client and to an HTTP/2 one.
func TestTrailersAnnouncedOrNotReachTheClient(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Announced")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.(http.Flusher).Flush() // chunked over HTTP/1.1
		w.Header().Set("X-Announced", "a")
		w.Header().Set(http.TrailerPrefix+"X-Unannounced", "u")
	})
	h1 := &http.Server{Handler: handler}
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h1.Serve(ln1)
	t.Cleanup(func() { h1.Close() })
	h2 := startH2C(t, handler)
	g := gatewaytest.Start(t, `
		upstreams:
		  h1:
		    endpoints: ["`+ln1.Addr().String()+`"]
		  h2:
		    endpoints: ["`+h2+`"]
		    protocol: h2c
		routes:
		  - {id: h1, uri: "lb://h1", predicates: ["Path=/h1"]}
		  - {id: h2, uri: "lb://h2", predicates: ["Path=/h2"]}`)
	clients := map[string]http.RoundTripper{
		"http1": &http.Transport{},
		"h2c": &http2.Transport{AllowHTTP: true, DialTLS: func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		}},
	}
	for cname, client := range clients {
		for _, backend := range []string{"h1", "h2"} {
			t.Run(backend+" backend to "+cname+" client", func(t *testing.T) {
				req, _ := http.NewRequest("GET", gatewaytest.URL(g, "/"+backend), nil)
				resp, err := client.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "body" {
					t.Fatalf("body %q, %v", b, err)
				}
				if a, u := resp.Trailer.Get("X-Announced"), resp.Trailer.Get("X-Unannounced"); a != "a" || u != "u" {
					t.Fatalf("trailers %v; want X-Announced: a and X-Unannounced: u", resp.Trailer)
				}
			})
		}
	}
}
