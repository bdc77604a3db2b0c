package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// reloadFile writes a gateway config from sections (server, admin, log,
// drain, tracing, reload, upstreams, routes, default_filters; each the
// block's body), the base ones unless given.
type reloadFile struct {
	t      *testing.T
	path   string
	echo   string // an Echo backend
	slow   string // a counting backend (?sleep=MS)
	server string // lines added to the base server block
}

func (f *reloadFile) write(sections map[string]string) {
	f.t.Helper()
	base := map[string]string{
		"server":    "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\n" + f.server,
		"admin":     "listen: 127.0.0.1:0",
		"log":       "access_log: true",
		"drain":     "delay: 0s\ntimeout: 1s",
		"reload":    "watch: false",
		"upstreams": "slow:\n  endpoints: [\"" + f.slow + "\"]",
		"routes": "- {id: echo, uri: \"http://" + f.echo + "\", predicates: [\"Path=/echo/**\"]}\n" +
			"- {id: slow, uri: \"lb://slow\", predicates: [\"Path=/slow/**\"]}",
	}
	for k, v := range sections {
		base[k] = v
	}
	var b strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range base {
			if !yield(k) {
				return
			}
		}
	}) {
		if base[k] == "" {
			continue
		}
		b.WriteString(k + ":\n")
		for l := range strings.SplitSeq(strings.TrimSpace(base[k]), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	if err := os.WriteFile(f.path, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// Every config field is either applied by a reload or makes the reload
// refused, naming the field and saying a restart is needed (issue 14,
// item 1): each field of restartOnly is changed alone and refused, with
// the old config still serving; each field a reload applies is changed and
// its effect seen on the next requests, then the drain timings on Stop.
func TestReloadAppliesOrRefusesEveryField(t *testing.T) {
	echo := gatewaytest.NewEcho(t, "echo")
	slow := newCountingBackend(t, "slow")
	f := &reloadFile{t: t, path: filepath.Join(t.TempDir(), "sluice.yaml"), echo: echo.Addr(), slow: slow.addr()}
	f.write(nil)
	var logs gatewaytest.SafeBuffer
	g, err := gateway.Start(f.path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			gatewaytest.Stop(g)
		}
	}()
	reload := func(sections map[string]string) error {
		t.Helper()
		f.write(sections)
		return g.Reload()
	}
	mustReload := func(sections map[string]string) {
		t.Helper()
		if err := reload(sections); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	xff := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/echo/x"), nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		_, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
		return strings.Join(gatewaytest.DecodeSeen(t, body).Header["X-Forwarded-For"], ",")
	}
	if got := xff(); got != "203.0.113.7, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For from a trusted peer: %q", got)
	}

	cert, _ := filepath.Abs("../config/testdata/cert.pem")
	key, _ := filepath.Abs("../config/testdata/key.pem")
	refused := map[string]map[string]string{
		"server.listen":              {"server": "listen: 127.0.0.1:1\ntrusted_proxies: [127.0.0.0/8]"},
		"server.read_header_timeout": {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nread_header_timeout: 7s"},
		"server.idle_timeout":        {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nidle_timeout: 7s"},
		"server.release_idle_after":  {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nrelease_idle_after: 3s"},
		"server.max_header_bytes":    {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nmax_header_bytes: 2KiB"},
		"server.max_connections":     {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nmax_connections: 7"},
		"server.keepalive":           {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nkeepalive: {enabled: false}"},
		"server.h2c":                 {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nh2c: false"},
		"server.body_timeout":        {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nbody_timeout: 7s"},
		"server.body_min_rate":       {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nbody_min_rate: 1000"},
		"server.tls":                 {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\ntls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}"},
		"server.listeners":           {"server": "listen: 127.0.0.1:0\ntrusted_proxies: [127.0.0.0/8]\nlisteners: [{name: more, listen: 127.0.0.1:0}]"},
		"admin":                      {"admin": "listen: 127.0.0.1:0\nready_saturation_threshold: 0.5"},
		"log.level":                  {"log": "access_log: true\nlevel: debug"},
		"log.format":                 {"log": "access_log: true\nformat: text"},
		"tracing":                    {"tracing": "service_name: other"},
		"reload":                     {"reload": "watch: false\ninterval: 7s"},
	}
	for _, path := range gateway.RestartOnly {
		change, ok := refused[path]
		if !ok {
			t.Fatalf("restart-only field %s has no case here", path)
		}
		err := reload(change)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "restart") {
			t.Fatalf("a reload changing %s: %v; want it refused, naming the field and a restart", path, err)
		}
		if got := xff(); got != "203.0.113.7, 127.0.0.1" {
			t.Fatalf("after the refused reload of %s the old config does not serve: X-Forwarded-For %q", path, got)
		}
	}

	// server.trusted_proxies: revoking the range stops believing it at once.
	f.server = ""
	mustReload(map[string]string{"server": "listen: 127.0.0.1:0"})
	if got := xff(); got != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For after the proxy range was revoked: %q, want the peer alone", got)
	}
	// server.untrusted_headers: the list in force strips what an untrusted peer sends.
	realIP := func() []string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/echo/x"), nil)
		req.Header.Set("X-Real-IP", "203.0.113.7")
		_, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
		return gatewaytest.DecodeSeen(t, body).Header["X-Real-Ip"]
	}
	if got := realIP(); got != nil {
		t.Fatalf("X-Real-IP from an untrusted peer under the default list: %q", got)
	}
	mustReload(map[string]string{"server": "listen: 127.0.0.1:0\nuntrusted_headers: []"})
	if got := realIP(); len(got) != 1 || got[0] != "203.0.113.7" {
		t.Fatalf("X-Real-IP after untrusted_headers: [] was reloaded: %q, want it kept", got)
	}
	// server.max_concurrent_requests and server.queue: the global limit.
	mustReload(map[string]string{"server": "listen: 127.0.0.1:0\nmax_concurrent_requests: 1\nqueue: {size: 0}"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := gatewaytest.Client(t).Get(gatewaytest.URL(g, "/slow/x?sleep=1500"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	if !gatewaytest.Eventually(5*time.Second, func() bool { return slow.inflight.Load() == 1 }) {
		t.Fatal("the slow request did not arrive")
	}
	if resp, _ := gatewaytest.Get(t, g, "/echo/x"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Sluice-Reason") != "overloaded" {
		t.Fatalf("a second request under max_concurrent_requests: 1: %d %s", resp.StatusCode, resp.Header.Get("X-Sluice-Reason"))
	}
	<-done
	// server.response_timeout and server.max_body_size: the routes' defaults.
	mustReload(map[string]string{"server": "listen: 127.0.0.1:0\nresponse_timeout: 200ms\nmax_body_size: 10"})
	if resp, _ := gatewaytest.Get(t, g, "/slow/x?sleep=1000"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("server.response_timeout 200ms, answer after 1s: %d", resp.StatusCode)
	}
	post, _ := http.NewRequest(http.MethodPost, gatewaytest.URL(g, "/echo/x"), bytes.NewReader(make([]byte, 100)))
	if resp, _ := gatewaytest.Do(t, gatewaytest.Client(t), post); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("server.max_body_size 10, body of 100: %d", resp.StatusCode)
	}
	// log.access_*: fields, 2xx sampling, on and off.
	accessLines := func() (out []map[string]any) {
		for _, l := range logs.JSONLines() {
			if l["msg"] == "access" {
				out = append(out, l)
			}
		}
		return out
	}
	// (A line is written once the response is sent: wait for it.)
	n := len(accessLines())
	mustReload(map[string]string{"log": "access_log: true\naccess_fields: [method, status]"})
	gatewaytest.Get(t, g, "/echo/fields")
	gatewaytest.Eventually(5*time.Second, func() bool { return len(accessLines()) == n+1 })
	if l := accessLines(); len(l) != n+1 || l[n]["path"] != nil || l[n]["status"] != 200.0 {
		t.Fatalf("log.access_fields [method, status]: %d new lines, %v", len(l)-n, l[len(l)-1])
	}
	n++
	mustReload(map[string]string{"log": "access_log: true\naccess_sample_2xx: 0"})
	gatewaytest.Get(t, g, "/echo/sampled")
	gatewaytest.Get(t, g, "/none")
	gatewaytest.Eventually(5*time.Second, func() bool { return len(accessLines()) >= n+1 })
	time.Sleep(200 * time.Millisecond)
	if l := accessLines(); len(l) != n+1 || l[n]["status"] != 404.0 {
		t.Fatalf("log.access_sample_2xx 0: %d new lines, want the 404's alone", len(l)-n)
	}
	n++
	mustReload(map[string]string{"log": "access_log: false"})
	gatewaytest.Get(t, g, "/none")
	time.Sleep(300 * time.Millisecond)
	if l := accessLines(); len(l) != n {
		t.Fatalf("log.access_log false: %d new lines", len(l)-n)
	}
	// routes, upstreams, default_filters: built anew (as are upstream_defaults, redis, cors, compression).
	mustReload(map[string]string{
		"upstreams":       "slow:\n  endpoints: [\"" + echo.Addr() + "\"]",
		"default_filters": "- AddResponseHeader=X-Default, yes",
		"routes": "- {id: echo, uri: \"http://" + echo.Addr() + "\", predicates: [\"Path=/echo/**\"]}\n" +
			"- {id: slow, uri: \"lb://slow\", predicates: [\"Path=/slow/**\"]}\n" +
			"- {id: added, uri: \"http://" + echo.Addr() + "\", predicates: [\"Path=/added/**\"]}",
	})
	if resp, body := gatewaytest.Get(t, g, "/slow/x"); resp.StatusCode != 200 || gatewaytest.DecodeSeen(t, body).Path != "/slow/x" || resp.Header.Get("X-Default") != "yes" {
		t.Fatalf("changed upstream and default filter: %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Default"))
	}
	if resp, _ := gatewaytest.Get(t, g, "/added/x"); resp.StatusCode != 200 {
		t.Fatalf("added route: %d", resp.StatusCode)
	}
	// drain: the timings in force when the gateway stops.
	mustReload(map[string]string{"drain": "delay: 600ms\ntimeout: 1s"})
	start := time.Now()
	stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.Stop(ctx)
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Fatalf("stopped in %v after drain.delay was reloaded to 600ms", d)
	}
}

// A reload to a config without routes is refused (every request would get
// 404) unless the file says `routes: []`; an empty file is refused too
// (issue 14, item 7).
func TestReloadRefusesNoRoutesUnlessExplicit(t *testing.T) {
	echo := gatewaytest.NewEcho(t, "echo")
	f := &reloadFile{t: t, path: filepath.Join(t.TempDir(), "sluice.yaml"), echo: echo.Addr(), slow: echo.Addr()}
	f.write(nil)
	g, err := gateway.Start(f.path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer gatewaytest.Stop(g)
	for name, data := range map[string]string{
		"empty file":    "",
		"no routes key": "server: {listen: 127.0.0.1:0, trusted_proxies: [127.0.0.0/8]}\nadmin: {listen: 127.0.0.1:0}\nlog: {access_log: true}\nreload: {watch: false}\n",
		"null routes":   "server: {listen: 127.0.0.1:0, trusted_proxies: [127.0.0.0/8]}\nadmin: {listen: 127.0.0.1:0}\nlog: {access_log: true}\nreload: {watch: false}\nroutes:\n",
	} {
		if err := os.WriteFile(f.path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(); err == nil || !strings.Contains(err.Error(), "routes: []") {
			t.Fatalf("%s: reload %v; want it refused, saying how to mean it", name, err)
		}
		if resp, _ := gatewaytest.Get(t, g, "/echo/x"); resp.StatusCode != 200 {
			t.Fatalf("%s: the old routes stopped serving: %d", name, resp.StatusCode)
		}
	}
	f.write(map[string]string{"routes": "[]", "upstreams": ""})
	if err := g.Reload(); err != nil {
		t.Fatalf("routes: [] written: %v", err)
	}
	if resp, _ := gatewaytest.Get(t, g, "/echo/x"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after reloading routes: []: %d, want 404", resp.StatusCode)
	}
}

// Every field of the config is classified once: restart-only (a reload
// that changes it is refused) or applied by a reload. A new field that is in
// neither list fails here, so it cannot be silently kept from a reload.
func TestReloadClassifiesEveryConfigField(t *testing.T) {
	var leaves []string
	var walk func(t reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		for i := range typ.NumField() {
			fl := typ.Field(i)
			key, _, _ := strings.Cut(fl.Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			path := prefix + key
			ft := fl.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeFor[config.Config]().PkgPath() {
				walk(ft, path+".")
				continue
			}
			leaves = append(leaves, path)
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	covers := func(list []string, path string) (n int) {
		for _, e := range list {
			if path == e || strings.HasPrefix(path, e+".") {
				n++
			}
		}
		return n
	}
	for _, p := range leaves {
		if r, a := covers(gateway.RestartOnly, p), covers(gateway.AppliedByReload, p); r+a != 1 {
			t.Errorf("config field %s: in restartOnly %d times, in appliedByReload %d times; want exactly one", p, r, a)
		}
	}
	for _, e := range slices.Concat(gateway.RestartOnly, gateway.AppliedByReload) {
		if !slices.ContainsFunc(leaves, func(p string) bool { return p == e || strings.HasPrefix(p, e+".") }) {
			t.Errorf("%s names no config field", e)
		}
	}
}

// A reload that changes an upstream (an endpoint added, then a timeout
// changed) keeps the live state of the endpoints that stay: their pooled
// connections carry on (the backend accepts no new one), until a pool option
// changes, when only their pools are made anew, and the log says so.
func TestReloadKeepsTheStateOfEndpointsThatStay(t *testing.T) {
	a := newCountingBackend(t, "a")
	b := newCountingBackend(t, "b")
	echo := gatewaytest.NewEcho(t, "echo")
	f := &reloadFile{t: t, path: filepath.Join(t.TempDir(), "sluice.yaml"), echo: echo.Addr(), slow: a.addr()}
	f.write(nil)
	var logs gatewaytest.SafeBuffer
	g, err := gateway.Start(f.path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer gatewaytest.Stop(g)
	cl := gatewaytest.Client(t)
	get := func(n int) {
		t.Helper()
		for range n {
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/slow/x"), nil)
			if resp, _ := gatewaytest.Do(t, cl, req); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	get(3)
	if n := a.accepted.Load(); n != 1 {
		t.Fatalf("a accepted %d connections for 3 sequential requests", n)
	}
	if err := reload(f, g, map[string]string{"upstreams": "slow:\n  endpoints: [\"" + a.addr() + "\", \"" + b.addr() + "\"]"}); err != nil {
		t.Fatal(err)
	}
	get(6)
	if n, hits := a.accepted.Load(), b.hits.Load(); n != 1 || hits == 0 {
		t.Fatalf("after adding an endpoint: a accepted %d connections in all (want 1: its pool kept), b served %d", n, hits)
	}
	if err := reload(f, g, map[string]string{"upstreams": "slow:\n  connect_timeout: 2s\n  endpoints: [\"" + a.addr() + "\", \"" + b.addr() + "\"]"}); err != nil {
		t.Fatal(err)
	}
	get(6)
	if n := a.accepted.Load(); n != 2 {
		t.Fatalf("after changing connect_timeout: a accepted %d connections in all, want 2 (a new pool)", n)
	}
	told := false
	for _, l := range logs.JSONLines() {
		if strings.HasPrefix(fmt.Sprint(l["msg"]), "upstream pool options changed") && l["upstream"] == "slow" {
			told = true
		}
	}
	if !told {
		t.Fatal("the new pools were not logged")
	}
}

func reload(f *reloadFile, g *gateway.Gateway, sections map[string]string) error {
	f.write(sections)
	return g.Reload()
}
