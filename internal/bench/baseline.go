package bench

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Baseline serves the reference point the issue names: the standard
// library's httputil.ReverseProxy with a default Transport (upstream
// keep-alive on, at most 2 idle connections per host), no logging. It runs
// as its own process (sluice-bench baseline), pinned like every peer, so
// its CPU and memory are measured the same way. It serves HTTP/1.1 and h2c
// with prior knowledge on one listener.
func Baseline(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "backend host:port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("baseline: --upstream is required")
	}
	target := &url.URL{Scheme: "http", Host: *upstream}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		Transport: http.DefaultTransport,
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: *listen, Handler: rp, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
