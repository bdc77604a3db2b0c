package chaos

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"

	"github.com/sluice-gw/sluice/internal/testkit/peerproc"
)

func TestMain(m *testing.M) {
	RunBackendIfChild() // scenarios 4 and 7 re-execute this binary as backends
	os.Exit(m.Run())
}

// The naive baseline must fail the race scenarios; otherwise the relays do
// not make the races real and a pass of another proxy would prove nothing.
func TestBaselineFailsRaceScenarios(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("runs scenarios for about 35s")
	}
	tests := []struct {
		desc     string
		scenario int
		cfg      Config
	}{
		// Narrower gaps than the default ±50ms make the race fire in almost
		// every run instead of in most.
		{desc: "1 keep-alive boundary race", scenario: 1, cfg: Config{GapJitter: 15 * time.Millisecond}},
		{desc: "6 restart on same address", scenario: 6, cfg: Config{Scale: 0.6}},
		{desc: "7 abrupt crash", scenario: 7, cfg: Config{Scale: 0.6}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := Scenarios()[tc.scenario-1]
			res := Run(context.Background(), tc.cfg, s, &Baseline{})
			t.Logf("\n%s", Markdown([]*Result{res}))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if res.Pass || res.Errored() == 0 {
				t.Fatalf("baseline passed scenario %d: the race did not fire", tc.scenario)
			}
			if res.DupPOSTs != 0 {
				t.Errorf("baseline duplicated %d POSTs; it never replays them", res.DupPOSTs)
			}
		})
	}
}

// With no fault injected the checker must count no error: the baseline
// passes scenario 3 (it honours Connection: close).
func TestBaselinePassesMaxRequests(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("runs a scenario for 3s")
	}
	res := Run(context.Background(), Config{Scale: 0.3}, Scenarios()[2], &Baseline{})
	if res.Err != nil || !res.Pass || res.Sent < 500 {
		t.Fatalf("got %s, %d requests, errors %s, err %v", res.Verdict(), res.Sent, res.ErrorSummary(), res.Err)
	}
}

func TestCheck(t *testing.T) {
	outs := []Outcome{
		{ID: "1", Method: "POST"},
		{ID: "2", Method: "POST", Err: "status_502"}, // processed: allowed in 7
		{ID: "3", Method: "POST", Err: "transport"},  // never reached a backend
		{ID: "4", Method: "GET", Err: "timeout"},
		{ID: "5", Method: "GET"},
	}
	recs := []backend.Record{
		{Backend: "b1", Method: "POST", ID: "1"},
		{Backend: "b2", Method: "POST", ID: "1"}, // a duplicate
		{Backend: "b1", Method: "POST", ID: "2"},
		{Backend: "b1", Method: "GET", ID: "5"},
		{Backend: "b2", Method: "GET", ID: "5"}, // a silent GET retry
	}
	r := Check(outs, recs)
	want := Result{Sent: 5, OK: 2, FailedGETs: 1, FailedPOSTs: 2, DupPOSTs: 1, FailedPOSTsProcessed: 1, LostPOSTs: 1, RetriedGETs: 1}
	got := Result{Sent: r.Sent, OK: r.OK, FailedGETs: r.FailedGETs, FailedPOSTs: r.FailedPOSTs, DupPOSTs: r.DupPOSTs,
		FailedPOSTsProcessed: r.FailedPOSTsProcessed, LostPOSTs: r.LostPOSTs, RetriedGETs: r.RetriedGETs}
	if got.Sent != want.Sent || got.OK != want.OK || got.FailedGETs != want.FailedGETs || got.FailedPOSTs != want.FailedPOSTs ||
		got.DupPOSTs != want.DupPOSTs || got.FailedPOSTsProcessed != want.FailedPOSTsProcessed ||
		got.LostPOSTs != want.LostPOSTs || got.RetriedGETs != want.RetriedGETs {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if s := r.ErrorSummary(); s != "3 (status_502=1 timeout=1 transport=1)" {
		t.Errorf("ErrorSummary = %q", s)
	}
}

func TestGapsCoverTheInterval(t *testing.T) {
	gaps := Gaps(10, time.Second, 50*time.Millisecond)
	seen := make([]bool, 10)
	for _, g := range gaps {
		if g < 950*time.Millisecond || g >= 1050*time.Millisecond {
			t.Fatalf("gap %v outside 1s±50ms", g)
		}
		seen[int((g-950*time.Millisecond)/(10*time.Millisecond))] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("no gap in slice %d", i)
		}
	}
}

func TestClientCountsErrors(t *testing.T) {
	b, err := backend.Start(backend.Options{Name: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := NewClient(b.Addr(), ClientOptions{})
	defer c.Close()
	for _, m := range []string{"GET", "POST"} {
		if o := c.Do(context.Background(), m); o.Err != "" || o.Backend != "b1" {
			t.Fatalf("%s: %+v", m, o)
		}
	}
	b.Close()
	if o := c.Do(context.Background(), "GET"); o.Err != "transport" {
		t.Fatalf("to a closed backend: %+v", o)
	}
	c.OpenLoop(context.Background(), 100, 200*time.Millisecond)
	if n := len(c.Outcomes()); n != 3+20 {
		t.Fatalf("%d outcomes, want 23", n)
	}
}

func TestBaselineSetEndpoints(t *testing.T) {
	var bs []*backend.Backend
	for _, name := range []string{"b1", "b2"} {
		b, err := backend.Start(backend.Options{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		bs = append(bs, b)
	}
	p := &Baseline{}
	addr, stop, err := p.Start(context.Background(), []string{bs[0].Addr(), bs[1].Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	err = p.SetEndpoints(addr, []Endpoint{
		{Addr: bs[0].Addr(), Ready: true, Serving: true},
		{Addr: bs[1].Addr(), Serving: true, Terminating: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	for range 4 {
		if o := c.Do(context.Background(), "GET"); o.Backend != "b1" {
			t.Fatalf("request went to %q (%s), want b1 only", o.Backend, o.Err)
		}
	}
}

// Every template renders, and the proxies that are installed accept it.
func TestTemplates(t *testing.T) {
	data := TemplateData{
		Listen: "127.0.0.1:18080", AdminListen: "127.0.0.1:18081",
		Upstreams: []string{"127.0.0.1:9001", "127.0.0.1:9002"}, Dir: t.TempDir(),
	}
	tests := []struct {
		desc  string
		cmd   *Command
		check []string // a config check command, run if installed
		want  string   // in the rendered config
	}{
		{desc: "sluice", cmd: Sluice("sluice"), want: `endpoints: ["127.0.0.1:9001", "127.0.0.1:9002"]`},
		{desc: "nginx", cmd: Nginx(), check: []string{"nginx", "-t", "-e", "stderr", "-p", data.Dir, "-c"}, want: "server 127.0.0.1:9002;"},
		{desc: "haproxy", cmd: HAProxy(), check: []string{"haproxy", "-c", "-f"}, want: "server s1 127.0.0.1:9002"},
		{desc: "caddy", cmd: Caddy(), check: []string{"caddy", "validate", "--adapter", "caddyfile", "--config"}, want: "reverse_proxy 127.0.0.1:9001 127.0.0.1:9002 {"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg, err := peerproc.Render(tc.cmd.Template, data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(cfg, tc.want) {
				t.Fatalf("config lacks %q:\n%s", tc.want, cfg)
			}
			if tc.check == nil {
				return
			}
			if _, err := exec.LookPath(tc.check[0]); err != nil {
				t.Skipf("%s not installed", tc.check[0])
			}
			path := data.Dir + "/" + tc.cmd.ConfigName
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tc.check[0], append(tc.check[1:], path)...)
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+data.Dir, "XDG_CONFIG_HOME="+data.Dir, "HOME="+data.Dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s\n%s", cmd.Args, err, out, cfg)
			}
		})
	}
}

// A Command proxy starts, proxies and stops; nginx stands in for any.
func TestCommandProxy(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed")
	}
	b, err := backend.Start(backend.Options{Name: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr, stop, err := Nginx().Start(context.Background(), []string{b.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend=b1 path=/x" {
		t.Fatalf("got %q", body)
	}
}
