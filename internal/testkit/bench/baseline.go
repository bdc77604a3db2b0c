package bench

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"time"
)

// Baseline serves the reference point the issue names: the standard
// library's httputil.ReverseProxy with a default Transport (upstream
// keep-alive on, at most 2 idle connections per host), no logging. It runs
// as its own process (sluice-bench baseline), pinned like every peer, so
// its CPU and memory are measured the same way.
func Baseline(args []string, stderr io.Writer) error {
	return servePeer("baseline", args, stderr, func(upstream string) http.Handler {
		target := &url.URL{Scheme: "http", Host: upstream}
		return &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.SetXForwarded()
			},
			Transport: http.DefaultTransport,
		}
	})
}

// servePeer runs a peer this executable serves itself: it reads --listen,
// --upstream and --pprof from args (peerFlags) and serves the handler made
// for the upstream on HTTP/1.1 and h2c with prior knowledge on one listener.
func servePeer(name string, args []string, stderr io.Writer, handler func(upstream string) http.Handler) error {
	listen, upstream, err := peerFlags(name, args, stderr)
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: listen, Handler: handler(upstream), Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// peerFlags parses the flags every built-in peer takes: --listen, --upstream
// and --pprof; with --pprof ADDR it serves CPU profiles on
// ADDR/debug/pprof/profile until the process exits.
func peerFlags(name string, args []string, stderr io.Writer) (listen, upstream string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&listen, "listen", "127.0.0.1:0", "listen address")
	fs.StringVar(&upstream, "upstream", "", "backend host:port")
	pprofAddr := fs.String("pprof", "", "address serving /debug/pprof (off when empty)")
	if err := fs.Parse(args); err != nil {
		return "", "", err
	}
	if upstream == "" {
		return "", "", fmt.Errorf("%s: --upstream is required", name)
	}
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return "", "", err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.Serve(ln, mux)
	}
	return listen, upstream, nil
}
