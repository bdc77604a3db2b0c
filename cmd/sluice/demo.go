package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/internal/config"
)

// demo starts one small backend for each endpoint of the config's upstreams
// (the quickstart lists two on 127.0.0.1), then runs the gateway on the
// config. Nothing else needs to be running.
func demo(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for name, u := range cfg.Upstreams {
		for _, e := range u.Endpoints {
			ln, err := net.Listen("tcp", e.Address)
			if err != nil {
				fmt.Fprintf(stderr, "demo backend %s: %v\n", e.Address, err)
				return 1
			}
			go http.Serve(ln, demoBackend(name, e.Address))
		}
	}
	printDemoAddrs(stdout, cfg)
	return serve(path, stderr)
}

// printDemoAddrs tells what to try: the proxy, the metrics and the dashboard.
func printDemoAddrs(w io.Writer, cfg *config.Config) {
	fmt.Fprintf(w, "demo backends started; try:\n  curl -s http://%s/api/hello\n", cfg.Server.Listen)
	if a := cfg.Admin.Listen; a != "" && a != "off" {
		fmt.Fprintf(w, "  curl -s http://%s/metrics\ndashboard: http://%s/ (data: /dashboard.json)\n", a, a)
	}
}

// demoBackend answers with what it received, so the proxying shows.
func demoBackend(upstream, addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		hdr := map[string]string{}
		for k := range r.Header {
			if strings.HasPrefix(k, "X-") || k == "Forwarded" {
				hdr[k] = r.Header.Get(k)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"backend": addr, "upstream": upstream, "method": r.Method, "path": r.URL.Path,
			"query": r.URL.RawQuery, "host": r.Host, "headers": hdr, "body_bytes": len(body),
		})
	})
}
