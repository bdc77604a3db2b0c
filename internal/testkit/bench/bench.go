// Package bench compares Sluice with the proxies operators would run
// instead, on one machine in one go: the same nginx backend behind Sluice,
// nginx, HAProxy, Caddy, the standard library's httputil.ReverseProxy and
// the floors (Floor and FastFloor: the least a proxy on net/http's server,
// and on fasthttp's, does), driven by the same load
// generator (wrk; h2load for HTTP/2), pinned to its own CPU, interleaved
// round-robin so that a change in the machine's load touches every peer
// alike. For each scenario and peer it reports the median over rounds of
// requests/s, latency percentiles and CPU time per 10k requests, the peak
// resident memory, and per request the CPU in user and kernel mode, context
// switches and, when asked, system calls.
//
// Every process the tool starts is a child it knows by PID; it stops those
// and nothing else. Everything listens on 127.0.0.1.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is one benchmark run.
type Config struct {
	Duration    time.Duration // of each measured load run; default 5s
	Warmup      time.Duration // unmeasured run per peer before each scenario; default 1s
	Rounds      int           // measured runs per peer and scenario; default 3
	Connections int           // wrk's connections; default 64
	Scenarios   []string      // default: all
	Proxies     []string      // default: all
	SluiceBin   string        // the sluice executable
	// CompareBin, if set, adds a peer "sluice-b" run from this executable
	// with the same config, for A/B comparisons of two builds (PGO, GC
	// settings) measured in the same interleaved rounds.
	CompareBin string
	Self       string // this executable (runs the baseline peer)
	LoadCPU    string // taskset CPU list of the load generator; default "0"
	ProxyCPU   string // taskset CPU list of the proxies and the backend; default "1"
	// PprofDir, if set, receives a CPU profile of Sluice taken during its
	// first measured run of each scenario, and its allocation profile after.
	PprofDir string
	// Syscalls counts each peer's system calls during its runs with perf
	// (Sample.Syscalls), which slows every system call of theirs a little.
	Syscalls bool
	Log      io.Writer // progress; default io.Discard
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	} else if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Connections <= 0 {
		c.Connections = 64
	}
	if c.LoadCPU == "" {
		c.LoadCPU = "0"
	}
	if c.ProxyCPU == "" {
		c.ProxyCPU = "1"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Sample is one measured run of one peer.
type Sample struct {
	Result
	// User and Sys are the CPU time in user and kernel mode of the peer's
	// process and its children during the run.
	User, Sys time.Duration
	Switches  int64 // context switches of all its threads
	Syscalls  int64 // system calls; -1 = not counted (Config.Syscalls off)
	PeakRSS   int64 // bytes, summed over its processes
}

// perRequest divides n by the sample's requests.
func (s Sample) perRequest(n float64) float64 {
	if s.Requests == 0 {
		return 0
	}
	return n / float64(s.Requests)
}

// CPUPer10k is CPU seconds per 10,000 requests.
func (s Sample) CPUPer10k() float64 {
	if s.Requests == 0 {
		return 0
	}
	return (s.User + s.Sys).Seconds() / float64(s.Requests) * 10000
}

// Row is one peer's line in a scenario's table.
type Row struct {
	Peer    string
	Samples []Sample
	Note    string // why there are no samples
}

// Table is one scenario's results.
type Table struct {
	Scenario Scenario
	Rows     []Row
}

// Run runs every selected scenario against every selected peer and returns
// the tables.
func Run(ctx context.Context, cfg Config) ([]Table, error) {
	cfg.defaults()
	scenarios, peers, err := selection(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		if p.Binary, err = lookPath(p.Name, p.Binary); err != nil {
			return nil, err
		}
	}
	if _, err := lookPath("backend", "nginx"); err != nil {
		return nil, err
	}
	if _, err := lookPath("taskset", "taskset"); err != nil {
		return nil, err
	}
	perf := ""
	if cfg.Syscalls {
		if perf, err = lookPath("--syscalls", "perf"); err != nil {
			return nil, err
		}
	}
	ld := &load{cpu: cfg.LoadCPU, conns: cfg.Connections}
	if slices.ContainsFunc(scenarios, func(s Scenario) bool { return s.Tool == "wrk" }) {
		if ld.wrk, err = lookPath("load generator", "wrk"); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(scenarios, func(s Scenario) bool { return s.Tool == "h2load" }) {
		if ld.h2load, err = lookPath("load generator", "h2load"); err != nil {
			return nil, err
		}
	}
	if cfg.PprofDir != "" {
		if err := os.MkdirAll(cfg.PprofDir, 0o755); err != nil {
			return nil, err
		}
	}
	scratch, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	ld.dir = scratch

	root, err := backendFiles(scratch)
	if err != nil {
		return nil, err
	}
	be, err := start(ctx, backendPeer(), TemplateData{Root: root}, cfg.ProxyCPU, false)
	if err != nil {
		return nil, err
	}
	defer be.stop()
	upstream := be.data.Listen
	if err := checkGet("http://"+upstream+"/small", "backend"); err != nil {
		return nil, err
	}

	procs := make([]*process, len(peers))
	defer func() {
		for _, pr := range procs {
			if pr != nil {
				pr.stop()
			}
		}
	}()
	for i, p := range peers {
		fmt.Fprintf(cfg.Log, "starting %s\n", p.Name)
		procs[i], err = start(ctx, p, TemplateData{Upstream: upstream, Self: cfg.Self}, cfg.ProxyCPU, false)
		if err != nil {
			return nil, err
		}
		if err := checkGet("http://"+procs[i].data.Listen+"/small", p.Name); err != nil {
			return nil, err
		}
	}

	var tables []Table
	for _, sc := range scenarios {
		t := Table{Scenario: sc, Rows: make([]Row, len(peers))}
		addrs := make([]string, len(peers))
		for i, p := range peers {
			t.Rows[i].Peer = p.Name
			addrs[i] = procs[i].data.Listen
			if sc.Tool == "h2load" {
				addrs[i] = procs[i].h2Addr(p)
				if addrs[i] == "" {
					t.Rows[i].Note = "no h2c"
				}
			}
		}
		if cfg.Warmup > 0 {
			for i, p := range peers {
				if addrs[i] == "" {
					continue
				}
				fmt.Fprintf(cfg.Log, "%s: warming up %s\n", sc.Name, p.Name)
				if _, err := ld.run(ctx, sc, addrs[i], cfg.Warmup); err != nil {
					t.Rows[i].Note = firstLine(err.Error())
					addrs[i] = ""
				}
			}
		}
		for round := 0; round < cfg.Rounds; round++ {
			// Round-robin, starting one peer further each round.
			for k := range peers {
				i := (k + round) % len(peers)
				if addrs[i] == "" {
					continue
				}
				if err := ctx.Err(); err != nil {
					return tables, err
				}
				prof := cfg.PprofDir != "" && peers[i].Pprof && round == 0
				s, err := measure(ctx, ld, sc, procs[i], addrs[i], cfg.Duration, prof, cfg.PprofDir, perf)
				if err != nil {
					fmt.Fprintf(cfg.Log, "%s: %s: %v\n", sc.Name, peers[i].Name, err)
					t.Rows[i].Note = firstLine(err.Error())
					continue
				}
				fmt.Fprintf(cfg.Log, "%s round %d: %-8s %8.0f req/s  p99 %v  cpu/10k %.3fs  errors %d\n",
					sc.Name, round+1, peers[i].Name, s.RPS(), s.P99, s.CPUPer10k(), s.Errors)
				t.Rows[i].Samples = append(t.Rows[i].Samples, s)
			}
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// measure runs one load run against pr and reads its CPU time, context
// switches and peak RSS, and with perf set its system calls.
func measure(ctx context.Context, ld *load, sc Scenario, pr *process, addr string, d time.Duration, prof bool, dir, perf string) (Sample, error) {
	pids := tree(pr.cmd.Process.Pid)
	resetPeakRSS(pids)
	var profDone chan error
	if prof {
		profDone = make(chan error, 1)
		secs := max(int((d-time.Second)/time.Second), 1)
		go func() {
			profDone <- fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pr.data.AdminListen, secs),
				filepath.Join(dir, pr.name+"-"+sc.Name+".cpu.pprof"))
		}()
	}
	var calls *syscallCounter
	if perf != "" {
		var err error
		if calls, err = startSyscalls(perf, pids); err != nil {
			return Sample{}, err
		}
	}
	u0 := treeUsage(pids)
	r, err := ld.run(ctx, sc, addr, d)
	u := treeUsage(pids).sub(u0)
	syscalls := int64(-1)
	if calls != nil {
		n, cerr := calls.stop()
		if err == nil && cerr != nil {
			err = cerr
		}
		syscalls = n
	}
	if err != nil {
		return Sample{}, err
	}
	select {
	case <-pr.exited:
		return Sample{}, errors.New("exited during the run")
	default:
	}
	s := Sample{Result: r, User: u.user, Sys: u.sys, Switches: u.switches, Syscalls: syscalls, PeakRSS: peakRSS(pids)}
	if prof {
		if err := <-profDone; err != nil {
			return s, err
		}
		if err := fetch("http://"+pr.data.AdminListen+"/debug/pprof/allocs", filepath.Join(dir, pr.name+"-"+sc.Name+".allocs.pprof")); err != nil {
			return s, err
		}
	}
	return s, nil
}

func fetch(url, path string) error {
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkGet makes sure a peer answers 200 before it is measured.
func checkGet(url, who string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("%s: %w", who, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: GET %s: %s", who, url, resp.Status)
	}
	return nil
}

// backendFiles writes the backend's documents: a 13-byte /small and a
// 100 KiB /100k.
func backendFiles(dir string) (string, error) {
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755)
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	if err := os.WriteFile(filepath.Join(root, "small"), []byte("hello, world\n"), 0o644); err != nil {
		return "", err
	}
	return root, os.WriteFile(filepath.Join(root, "100k"), big, 0o644)
}

// selection resolves the scenario and peer names of cfg.
func selection(cfg Config) ([]Scenario, []*Peer, error) {
	var scenarios []Scenario
	if len(cfg.Scenarios) == 0 {
		scenarios = Scenarios
	}
	for _, name := range cfg.Scenarios {
		i := slices.IndexFunc(Scenarios, func(s Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(ScenarioNames(), ", "))
		}
		scenarios = append(scenarios, Scenarios[i])
	}
	all := Peers(cfg.SluiceBin, cfg.Self)
	if cfg.CompareBin != "" {
		b := *all[0]
		b.Name, b.Binary = "sluice-b", cfg.CompareBin
		all = slices.Insert(all, 1, &b)
		if len(cfg.Proxies) > 0 && !slices.Contains(cfg.Proxies, "sluice-b") {
			cfg.Proxies = append(slices.Clone(cfg.Proxies), "sluice-b")
		}
	}
	var peers []*Peer
	if len(cfg.Proxies) == 0 {
		peers = all
	}
	for _, name := range cfg.Proxies {
		i := slices.IndexFunc(all, func(p *Peer) bool { return p.Name == name })
		if i < 0 {
			return nil, nil, fmt.Errorf("unknown proxy %q (have %s)", name, strings.Join(PeerNames(), ", "))
		}
		peers = append(peers, all[i])
	}
	for _, p := range peers {
		if p.Binary == "" {
			return nil, nil, fmt.Errorf("%s: no executable given", p.Name)
		}
	}
	return scenarios, peers, nil
}

// ScenarioNames lists the scenario names in table order.
func ScenarioNames() []string {
	var n []string
	for _, s := range Scenarios {
		n = append(n, s.Name)
	}
	return n
}

// PeerNames lists the peer names in table order.
func PeerNames() []string {
	var n []string
	for _, p := range Peers("", "") {
		n = append(n, p.Name)
	}
	return n
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
