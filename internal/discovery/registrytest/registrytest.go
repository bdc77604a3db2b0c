// Package registrytest runs in-process servers that speak the HTTP APIs of
// the service registries Spring Cloud applications register with — Nacos,
// Eureka and Consul — as their documentation specifies, like net/http's
// httptest does for HTTP. The registries themselves cannot run on the test
// machines (Nacos and Eureka are Java servers, Consul's licence is not
// free), so these stand in for them. Every answer is built from a body
// recorded from the registry's documentation (testdata/*.json), with only
// the instance fields changed, so that clients parse what the real
// registries send. The servers listen on 127.0.0.1 and can be stopped and
// restarted on the same address, to play a registry outage.
package registrytest

import (
	"embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed testdata/*.json
var fixtures embed.FS

// fixture returns a fresh decoding of a recorded body.
func fixture(name string) any {
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return v
}

// Instance is one registered instance of a service.
type Instance struct {
	Addr string // host:port
	// Healthy: Nacos healthy, Eureka UP (else DOWN), Consul checks passing.
	Healthy bool
	// Disabled: Nacos enabled: false; Eureka OUT_OF_SERVICE.
	Disabled bool
	// Status, when set, is the Eureka status as written (STARTING, …).
	Status string
	Weight float64 // Nacos weight, Consul passing weight; 0 = the registry's default
}

func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	var n int
	fmt.Sscan(port, &n)
	return host, n
}

// server is an HTTP server on a fixed loopback address that can be stopped
// and started again.
type server struct {
	t       testing.TB
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

func (s *server) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port of a stopped server may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("registry listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
}

// Stop closes the listener and every connection: the registry is down.
func (s *server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// Start listens again on the same address.
func (s *server) Start() { s.start() }

// Addr is the server's host:port.
func (s *server) Addr() string { return s.addr }

// URL is http://host:port.
func (s *server) URL() string { return "http://" + s.addr }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// services holds the instances of each service and a version that moves on
// every change, for servers that wait for changes.
type services struct {
	mu      sync.Mutex
	byName  map[string][]Instance
	version uint64
	changed chan struct{} // closed and replaced on every change
}

func newServices() *services {
	return &services{byName: map[string][]Instance{}, version: 1, changed: make(chan struct{})}
}

func (s *services) set(name string, insts []Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName[name] = append([]Instance(nil), insts...)
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *services) get(name string) ([]Instance, uint64, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Instance(nil), s.byName[name]...), s.version, s.changed
}

// names returns the names under prefix (the prefix removed) that have
// instances, sorted, and the version of the set.
func (s *services) names(prefix string) ([]string, uint64, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, insts := range s.byName {
		if rest, ok := strings.CutPrefix(name, prefix); ok && len(insts) > 0 {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out, s.version, s.changed
}

// clone deep-copies a decoded JSON value.
func clone(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

func deadline() time.Time { return time.Now().Add(2 * time.Second) }
