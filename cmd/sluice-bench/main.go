// Command sluice-bench runs the same nginx backend behind Sluice, nginx,
// HAProxy, Caddy, httputil.ReverseProxy and do-nothing proxies on net/http
// and on fasthttp (the floors) on this machine, drives each with wrk (h2load for HTTP/2) pinned to
// its own CPU, interleaved, and prints Markdown tables per scenario: speed,
// latency, CPU and memory, then CPU per request split into user and kernel
// mode, context switches and (--syscalls) system calls. See docs/performance.md.
//
//	go build -o /tmp/sluice ./cmd/sluice && go build -o /tmp/sluice-bench ./cmd/sluice-bench
//	/tmp/sluice-bench --sluice-bin /tmp/sluice
//	/tmp/sluice-bench --sluice-bin /tmp/sluice --scenarios small --proxies sluice,nginx --duration 3s --rounds 1
//	/tmp/sluice-bench --sluice-bin /tmp/sluice --proxies sluice --pprof /tmp/prof   (CPU and alloc profiles of Sluice)
//
// sluice-bench baseline --listen ADDR --upstream ADDR runs the
// httputil.ReverseProxy peer, sluice-bench floor the smallest proxy
// net/http's server allows (bench.Floor) and sluice-bench fastfloor the same
// on fasthttp's (bench.FastFloor); the tool starts them that way itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/bench"
)

func main() {
	if len(os.Args) > 1 {
		if serve, ok := builtin[os.Args[1]]; ok {
			if err := serve(os.Args[2:], os.Stderr); err != nil {
				fmt.Fprintf(os.Stderr, "sluice-bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// builtin are the peers this executable serves itself.
var builtin = map[string]func([]string, io.Writer) error{"baseline": bench.Baseline, "floor": bench.Floor, "fastfloor": bench.FastFloor}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of each measured run")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured run per proxy before each scenario (negative: none)")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "measured runs per proxy and scenario (the median is reported)")
	fs.IntVar(&cfg.Connections, "connections", 64, "wrk connections")
	scenarios := fs.String("scenarios", strings.Join(bench.ScenarioNames(), ","), "scenarios, comma separated")
	proxies := fs.String("proxies", strings.Join(bench.PeerNames(), ","), "proxies, comma separated")
	fs.StringVar(&cfg.SluiceBin, "sluice-bin", "", "sluice executable (default: sluice next to this program, else in PATH)")
	fs.StringVar(&cfg.CompareBin, "compare-bin", "", "a second sluice executable, measured as sluice-b in the same rounds (A/B of two builds)")
	fs.StringVar(&cfg.LoadCPU, "load-cpu", "0", "CPUs of the load generator (taskset list)")
	fs.StringVar(&cfg.ProxyCPU, "proxy-cpu", "1", "CPUs of the proxy and the backend (taskset list)")
	fs.BoolVar(&cfg.Syscalls, "syscalls", false, "count each peer's system calls with perf stat (slows their system calls a little: not for the main figures)")
	fs.StringVar(&cfg.PprofDir, "pprof", "", "directory for Sluice's CPU and allocation profiles (first round of each scenario)")
	verbose := fs.Bool("v", false, "print progress to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Scenarios = split(*scenarios)
	cfg.Proxies = split(*proxies)
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench:", err)
		return 1
	}
	cfg.Self = self
	if cfg.SluiceBin == "" {
		cfg.SluiceBin = findSluice(self)
	}
	if *verbose {
		cfg.Log = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started, load := time.Now().UTC(), bench.LoadAverage()
	tables, err := bench.Run(ctx, cfg)
	if err != nil && len(tables) == 0 {
		fmt.Fprintln(stderr, "sluice-bench:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Run %s, %v per run, %d rounds, %d wrk connections; wrk on CPU %s, proxy and backend on CPU %s.\n\n",
		started.Format("2006-01-02 15:04 MST"), cfg.Duration, cfg.Rounds, cfg.Connections, cfg.LoadCPU, cfg.ProxyCPU)
	fmt.Fprintf(stdout, "Command: `%s`\n\n", strings.Join(append([]string{filepath.Base(os.Args[0])}, args...), " "))
	fmt.Fprint(stdout, bench.Machine())
	fmt.Fprintf(stdout, "- load average (1, 5, 15 min) at the start: %s; at the end: %s\n\n", load, bench.LoadAverage())
	bench.WriteMarkdown(stdout, tables)
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench: stopped early:", err)
		return 1
	}
	return 0
}

// findSluice looks for sluice next to this executable, then in PATH; it
// returns "sluice" (reported as missing later) if neither has it.
func findSluice(self string) string {
	p := filepath.Join(filepath.Dir(self), "sluice")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	if p, err := exec.LookPath("sluice"); err == nil {
		return p
	}
	return "sluice"
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
