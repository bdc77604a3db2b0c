package bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"

	"github.com/sluice-gw/sluice/internal/testkit/peerproc"
)

// The test binary doubles as the baseline and floor peers, as sluice-bench does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		serve := map[string]func([]string, io.Writer) error{"baseline": Baseline, "floor": Floor, "fastfloor": FastFloor}[os.Args[1]]
		if serve != nil {
			if err := serve(os.Args[2:], os.Stderr); err != nil {
				os.Exit(1)
			}
			return
		}
	}
	os.Exit(m.Run())
}

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    Result
		wantErr bool
	}{
		{
			name: "result line among wrk's summary",
			out: "Running 5s test @ http://127.0.0.1:1/small\n  1 threads and 64 connections\n" +
				"BENCH requests=150000 duration_us=5000000 errors=3 p50=1200 p99=4500 p999=9100\n",
			want: Result{Requests: 150000, Elapsed: 5 * time.Second, Errors: 3, P50: 1200 * time.Microsecond,
				P99: 4500 * time.Microsecond, P999: 9100 * time.Microsecond},
		},
		{name: "no result line", out: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !tc.wantErr && got.RPS() != 30000 {
				t.Errorf("RPS = %v, want 30000", got.RPS())
			}
		})
	}
}

func TestWrkScript(t *testing.T) {
	tests := []struct {
		name     string
		sc       Scenario
		want     []string
		wantNone string
	}{
		{name: "GET", sc: Scenario{Path: "/small"}, want: []string{"done = function", "latency:percentile(99.9)"}, wantNone: "wrk.method"},
		{name: "POST 1 KiB", sc: Scenario{PostBody: 1024}, want: []string{`wrk.method = "POST"`, `string.rep("x", 1024)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := wrkScript(tc.sc)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("script lacks %q:\n%s", w, s)
				}
			}
			if tc.wantNone != "" && strings.Contains(s, tc.wantNone) {
				t.Errorf("script has %q:\n%s", tc.wantNone, s)
			}
		})
	}
}

func TestParseH2load(t *testing.T) {
	out := `finished in 2.00s, 500.00 req/s, 100KB/s
requests: 1000 total, 1000 started, 1000 done, 998 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 998 2xx, 0 3xx, 0 4xx, 2 5xx`
	var log strings.Builder
	for i := 1; i <= 1000; i++ {
		status := "200"
		if i <= 2 {
			status = "502"
		}
		log.WriteString("1700000000000000\t" + status + "\t" + strconv.Itoa(i) + "\n")
	}
	r, err := parseH2load(out, strings.NewReader(log.String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Requests: 1000, Errors: 4, Elapsed: 2 * time.Second, // 2 failed + 2 non-2xx in the log
		P50: 500 * time.Microsecond, P99: 990 * time.Microsecond, P999: 999 * time.Microsecond}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if _, err := parseH2load("connect error", strings.NewReader(""), time.Second); err == nil {
		t.Error("no error for output without counts")
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    stat
		wantErr bool
	}{
		{
			name: "name with spaces and parentheses",
			line: "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 100 0 0 0 250 130 0 0 20 0 1 0 300 1000 200",
			want: stat{ppid: 4241, user: 2500 * time.Millisecond, sys: 1300 * time.Millisecond},
		},
		{name: "truncated", line: "1 (init) S 0 1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

var spin int

// tree finds a child process, CPU time is counted, and the peak RSS is read.
func TestProcessAccounting(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	child := exec.Command("sleep", "10")
	if err := child.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	pids := tree(os.Getpid())
	found := false
	for _, p := range pids {
		found = found || p == child.Process.Pid
	}
	if pids[0] != os.Getpid() || !found {
		t.Fatalf("tree(self) = %v, want self first and child %d", pids, child.Process.Pid)
	}
	// Spin until 50ms of CPU time are counted: a busy machine may give the
	// loop little CPU, but it must be counted eventually.
	cpu := func() time.Duration { u := treeUsage(pids[:1]); return u.user + u.sys }
	before := cpu()
	for deadline := time.Now().Add(10 * time.Second); cpu()-before < 50*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("10s of spinning counted less than 50ms of CPU")
		}
		for i := 0; i < 1e6; i++ {
			spin++
		}
	}
	u0 := treeUsage(pids[:1])
	time.Sleep(20 * time.Millisecond) // a sleep is a voluntary context switch
	if u := treeUsage(pids[:1]).sub(u0); u.switches <= 0 {
		t.Errorf("no context switch counted across a sleep: %+v", u)
	}
	resetPeakRSS(pids[:1])
	if rss := peakRSS(pids[:1]); rss < 1<<20 {
		t.Errorf("peak RSS %d bytes, want at least 1 MiB", rss)
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	samples := []Sample{
		{Result: Result{Requests: 1000, Elapsed: time.Second, P50: 3 * ms, P99: 9 * ms, P999: 20 * ms, Errors: 1}, PeakRSS: 10 << 20,
			User: 40 * ms, Sys: 60 * ms, Switches: 500, Syscalls: 7000},
		{Result: Result{Requests: 3000, Elapsed: time.Second, P50: 1 * ms, P99: 5 * ms, P999: 10 * ms}, PeakRSS: 12 << 20,
			User: 300 * ms, Sys: 300 * ms, Switches: 3000, Syscalls: 15000},
		{Result: Result{Requests: 2000, Elapsed: time.Second, P50: 2 * ms, P99: 7 * ms, P999: 30 * ms, Errors: 2}, PeakRSS: 11 << 20,
			User: 60 * ms, Sys: 140 * ms, Switches: 4000, Syscalls: 12000},
	}
	got := Summarize(samples)
	want := Summary{RPS: 2000, P50: 2 * ms, P99: 7 * ms, P999: 20 * ms, CPUPer10k: 1, PeakRSS: 12 << 20, Errors: 3, Rounds: 3,
		UserUS: 40, SysUS: 70, Switches: 1, Syscalls: 6}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	samples[1].Syscalls = -1 // one round not counted: no figure
	if got := Summarize(samples); got.Syscalls != -1 {
		t.Errorf("Syscalls = %v with a round not counted, want -1", got.Syscalls)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", m)
	}
}

func TestParseSwitches(t *testing.T) {
	status := "Name:\tsluice\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"
	if n := parseSwitches([]byte(status)); n != 127 {
		t.Errorf("parseSwitches = %d, want 127", n)
	}
}

func TestParsePerfCount(t *testing.T) {
	n, err := parsePerfCount("\n213964,,raw_syscalls:sys_enter,4002560004,100.00,,\n")
	if err != nil || n != 213964 {
		t.Errorf("got %d, %v; want 213964", n, err)
	}
	if _, err := parsePerfCount("<not supported>,,raw_syscalls:sys_enter,0,100.00,,\n"); err == nil {
		t.Error("an uncounted event must be an error")
	}
	if _, err := parsePerfCount("event syntax error: 'raw_syscalls:sys_enter'\n"); err == nil {
		t.Error("perf output without a count must be an error")
	}
}

func TestWriteMarkdown(t *testing.T) {
	s := func(rps int64, cpu time.Duration) Sample {
		return Sample{Result: Result{Requests: rps, Elapsed: time.Second, P50: time.Millisecond, P99: 2 * time.Millisecond, P999: 3 * time.Millisecond},
			User: cpu / 4, Sys: cpu * 3 / 4, Switches: rps / 2, Syscalls: -1, PeakRSS: 8 << 20}
	}
	tables := []Table{{
		Scenario: Scenario{Name: "small", Desc: "small GET"},
		Rows: []Row{
			{Peer: "sluice", Samples: []Sample{s(20000, 2*time.Second)}},
			{Peer: "nginx", Samples: []Sample{s(40000, 2*time.Second)}},
			{Peer: "caddy", Note: "no h2c in its default package"},
		},
	}}
	var b bytes.Buffer
	WriteMarkdown(&b, tables)
	out := b.String()
	for _, want := range []string{
		"### small — small GET",
		"| sluice | 20000 | 0.50 | 1.00 ms | 2.00 ms | 3.00 ms | 1.000 | 2.00 | 8.0 MiB | 0 |",
		"| nginx | 40000 | 1.00 |",
		"| caddy | — |",
		"no h2c in its default package",
		"| proxy | user µs | system µs | context switches | system calls |",
		"| sluice | 25 | 75 | 0.50 | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Every template renders; the peers that are installed accept their config.
func TestTemplates(t *testing.T) {
	dir := t.TempDir()
	data := TemplateData{Listen: "127.0.0.1:18080", H2Listen: "127.0.0.1:18081", AdminListen: "127.0.0.1:18082",
		Upstream: "127.0.0.1:9001", Dir: dir, Root: dir}
	peers := append(Peers("sluice", "self"), backendPeer())
	checks := map[string][]string{
		"nginx":   {"nginx", "-t", "-e", "stderr", "-p", dir, "-c"},
		"backend": {"nginx", "-t", "-e", "stderr", "-p", dir, "-c"},
		"haproxy": {"haproxy", "-c", "-f"},
		"caddy":   {"caddy", "validate", "--adapter", "caddyfile", "--config"},
	}
	for _, p := range peers {
		if p.Template == "" {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			text, err := templates.ReadFile("templates/" + p.Template)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := peerproc.Render(string(text), data)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, p.Name+"-"+p.ConfigName)
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if p.Name == "sluice" {
				if _, errs := config.ParseAll(path, []byte(cfg)); len(errs) > 0 {
					t.Fatalf("sluice config: %v\n%s", errs, cfg)
				}
				return
			}
			check := checks[p.Name]
			if _, err := exec.LookPath(check[0]); err != nil {
				t.Skipf("%s not installed", check[0])
			}
			cmd := exec.Command(check[0], append(check[1:], path)...)
			cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s\n%s", cmd.Args, err, out, cfg)
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := Run(context.Background(), Config{Proxies: []string{"sluice"}, SluiceBin: "/nonexistent/sluice", Scenarios: []string{"small"}})
	if err == nil || !strings.Contains(err.Error(), "sluice") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want a clear not-found error naming sluice", err)
	}
	_, err = Run(context.Background(), Config{Proxies: []string{"envoy"}})
	if err == nil || !strings.Contains(err.Error(), `unknown proxy "envoy"`) {
		t.Fatalf("err = %v, want unknown proxy", err)
	}
}

// A short real run: the baseline, the two floors and nginx behind the nginx backend, driven
// by wrk; every process the run started is gone afterwards.
func TestRunShort(t *testing.T) {
	for _, bin := range []string{"nginx", "wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := tree(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Second)
	defer cancel()
	loadCPU, proxyCPU := testCPUs()
	tables, err := Run(ctx, Config{Proxies: []string{"baseline", "floor", "fastfloor", "nginx"}, Scenarios: []string{"small"}, Self: self,
		Duration: time.Second, Rounds: 1, Warmup: -1, Connections: 8, LoadCPU: loadCPU, ProxyCPU: proxyCPU})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || len(tables[0].Rows) != 4 {
		t.Fatalf("tables = %+v", tables)
	}
	for _, r := range tables[0].Rows {
		if len(r.Samples) != 1 {
			t.Fatalf("%s: %d samples (%s)", r.Peer, len(r.Samples), r.Note)
		}
		s := r.Samples[0]
		if s.Requests < 100 || s.Errors != 0 || s.User+s.Sys <= 0 || s.Switches <= 0 || s.PeakRSS <= 0 || s.P99 <= 0 {
			t.Errorf("%s: implausible sample %+v", r.Peer, s)
		}
	}
	if after := tree(os.Getpid()); len(after) > len(before) {
		t.Errorf("processes left behind: %v (before: %v)", after, before)
	}
}
