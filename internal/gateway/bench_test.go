package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// BenchmarkProxyGET is one small GET end to end in process: a client with a
// keep-alive pool, the gateway (route match, filter chain, cluster, pool),
// and a net/http backend, all on 127.0.0.1. The access log goes to
// io.Discard through the JSON handler, as it would to a file.
//
//	go test -run '^$' -bench ProxyGET -benchmem ./internal/gateway
func BenchmarkProxyGET(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	g := gatewaytest.Start(b, `
		upstreams:
		  backend:
		    endpoints: ["`+ln.Addr().String()+`"]
		routes:
		  - id: api
		    uri: lb://backend
		    predicates: ["Path=/api/**"]
		    filters: ["StripPrefix=1"]`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := gatewaytest.URL(g, "/api/hello")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
