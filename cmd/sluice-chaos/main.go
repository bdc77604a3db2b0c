// Command sluice-chaos runs the failure scenarios of SCENARIOS.md (1–11)
// against a gateway and prints a Markdown table of the results.
//
//	sluice-chaos run --proxy baseline
//	sluice-chaos run --proxy sluice --sluice-bin ./sluice --scenario 1,6,7
//	sluice-chaos run --all-proxies --sluice-bin ./sluice
//	sluice-chaos run --proxy sluice-inproc     (Sluice in this process: also scenarios 8, 9 and 16)
//
// Backends that must be SIGTERMed or SIGKILLed run as processes of this
// same binary (see chaos.RunBackendIfChild).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/chaos"
	"github.com/sluice-gw/sluice/internal/testkit/chaos/inproc"
)

func main() {
	chaos.RunBackendIfChild()
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: sluice-chaos run [flags]   (sluice-chaos run -h for flags)")
		os.Exit(2)
	}
	os.Exit(run(os.Args[2:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("sluice-chaos run", flag.ContinueOnError)
	proxyNames := fs.String("proxy", "baseline", "proxies to test, comma separated: "+strings.Join(chaos.ProxyNames, ", ")+", sluice-inproc")
	all := fs.Bool("all-proxies", false, "test every proxy side by side (sluice only with --sluice-bin)")
	scenarios := fs.String("scenario", "", "scenarios to run, e.g. 1,6,7 (default: all)")
	sluiceBin := fs.String("sluice-bin", "", "path of the sluice binary")
	var cfg chaos.Config
	fs.Float64Var(&cfg.Scale, "scale", 1, "multiply every scenario's duration")
	fs.DurationVar(&cfg.KeepAlive, "keepalive", time.Second, "scenario 1: the backend's idle timeout T (1s, 2s, 5s)")
	advertised := fs.Duration("advertised", time.Second, "scenario 2: N of Keep-Alive: timeout=N (whole seconds, 0 allowed)")
	fs.DurationVar(&cfg.GapJitter, "jitter", 50*time.Millisecond, "scenarios 1, 2: ± around T of the client's gaps")
	fs.Float64Var(&cfg.Rate, "rate", 300, "open-loop load in requests per second")
	fs.DurationVar(&cfg.LatencyMin, "latency-min", time.Millisecond, "relays' minimum one-way latency")
	fs.DurationVar(&cfg.LatencyMax, "latency-max", 5*time.Millisecond, "relays' maximum one-way latency")
	fs.DurationVar(&cfg.MiddleboxIdle, "middlebox-idle", 3*time.Second, "scenario 11: L, after which idle flows are dropped")
	verbose := fs.Bool("v", false, "also print the output of proxy processes to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.AdvertisedTimeout = advertised
	if *verbose {
		cfg.Log = os.Stderr
	}
	names := strings.Split(*proxyNames, ",")
	if *all {
		names = chaos.ProxyNames
	}
	var proxies []chaos.Proxy
	for _, n := range names {
		n = strings.TrimSpace(n)
		if *all && n == "sluice" && *sluiceBin == "" {
			fmt.Fprintln(os.Stderr, "skipping sluice: no --sluice-bin")
			continue
		}
		if n == "sluice-inproc" {
			proxies = append(proxies, &inproc.Sluice{})
			continue
		}
		p, err := chaos.ProxyByName(n, *sluiceBin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if c, ok := p.(*chaos.Command); ok && *verbose {
			c.Output = os.Stderr
		}
		proxies = append(proxies, p)
	}
	list, err := chaos.SelectScenarios(*scenarios)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var results []*chaos.Result
	code := 0
	for _, s := range list {
		for _, p := range proxies {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "scenario %d (%s) × %s ...", s.ID, s.Name, p.Name())
			if _, ok := p.(*inproc.Sluice); ok && s.ID == 10 {
				// Rotation is judged against the connection age; the 60s
				// default would need a two-minute run.
				p = &inproc.Sluice{Pool: "{max_lifetime: 3s}"}
			}
			r := chaos.Run(ctx, cfg, s, p)
			fmt.Fprintf(os.Stderr, " %s in %v: %d requests, errors %s\n", r.Verdict(), r.Elapsed.Round(100*time.Millisecond), r.Sent, r.ErrorSummary())
			if r.Err != nil {
				fmt.Fprintf(os.Stderr, "  error: %v\n", r.Err)
				code = 1
			}
			results = append(results, r)
		}
	}
	fmt.Print(chaos.Markdown(results))
	return code
}
