package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Summary is a row's medians over its rounds (peak RSS: the largest).
type Summary struct {
	RPS            float64
	P50, P99, P999 time.Duration
	CPUPer10k      float64
	PeakRSS        int64
	Errors         int64 // over all rounds
	Rounds         int
	// Per request: CPU in user and kernel mode (µs), context switches, and
	// system calls (-1: not counted).
	UserUS, SysUS, Switches, Syscalls float64
}

// Summarize reduces a row's samples.
func Summarize(samples []Sample) Summary {
	s := Summary{Rounds: len(samples)}
	if len(samples) == 0 {
		return s
	}
	var rps, cpu, user, sys, sw, calls []float64
	var p50, p99, p999 []time.Duration
	for _, x := range samples {
		rps = append(rps, x.RPS())
		cpu = append(cpu, x.CPUPer10k())
		user = append(user, x.perRequest(float64(x.User.Microseconds())))
		sys = append(sys, x.perRequest(float64(x.Sys.Microseconds())))
		sw = append(sw, x.perRequest(float64(x.Switches)))
		if x.Syscalls >= 0 {
			calls = append(calls, x.perRequest(float64(x.Syscalls)))
		}
		p50, p99, p999 = append(p50, x.P50), append(p99, x.P99), append(p999, x.P999)
		s.PeakRSS = max(s.PeakRSS, x.PeakRSS)
		s.Errors += x.Errors
	}
	s.RPS, s.CPUPer10k = median(rps), median(cpu)
	s.UserUS, s.SysUS, s.Switches, s.Syscalls = median(user), median(sys), median(sw), -1
	if len(calls) == len(samples) {
		s.Syscalls = median(calls)
	}
	s.P50, s.P99, s.P999 = median(p50), median(p99), median(p999)
	return s
}

// median of a copy of v (the mean of the middle two for an even count).
func median[T float64 | time.Duration](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// WriteMarkdown prints one table per scenario, with ratios to nginx when
// nginx is in the run.
func WriteMarkdown(w io.Writer, tables []Table) {
	for _, t := range tables {
		fmt.Fprintf(w, "### %s — %s\n\n", t.Scenario.Name, t.Scenario.Desc)
		fmt.Fprintln(w, "| proxy | req/s | × nginx | p50 | p99 | p99.9 | CPU s / 10k req | × nginx | peak RSS | errors |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		var ref *Summary
		for _, r := range t.Rows {
			if r.Peer == "nginx" && len(r.Samples) > 0 {
				s := Summarize(r.Samples)
				ref = &s
			}
		}
		for _, r := range t.Rows {
			if len(r.Samples) == 0 {
				fmt.Fprintf(w, "| %s | — | | | | | | | | %s |\n", r.Peer, r.Note)
				continue
			}
			s := Summarize(r.Samples)
			rpsRatio, cpuRatio := "", ""
			if ref != nil && ref.RPS > 0 {
				rpsRatio = fmt.Sprintf("%.2f", s.RPS/ref.RPS)
			}
			if ref != nil && ref.CPUPer10k > 0 {
				cpuRatio = fmt.Sprintf("%.2f", s.CPUPer10k/ref.CPUPer10k)
			}
			errs := fmt.Sprint(s.Errors)
			if r.Note != "" {
				errs += " (" + r.Note + ")"
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %.3f | %s | %.1f MiB | %s |\n",
				r.Peer, s.RPS, rpsRatio, ms(s.P50), ms(s.P99), ms(s.P999), s.CPUPer10k, cpuRatio,
				float64(s.PeakRSS)/(1<<20), errs)
		}
		fmt.Fprintln(w)
		writePerRequest(w, t)
	}
}

// writePerRequest prints where each peer's CPU went, per request: user and
// kernel mode, context switches, and system calls when they were counted.
func writePerRequest(w io.Writer, t Table) {
	fmt.Fprintln(w, "Per request (medians over rounds):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| proxy | user µs | system µs | context switches | system calls |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range t.Rows {
		if len(r.Samples) == 0 {
			continue
		}
		s := Summarize(r.Samples)
		calls := "–"
		if s.Syscalls >= 0 {
			calls = fmt.Sprintf("%.1f", s.Syscalls)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %s |\n", r.Peer, s.UserUS, s.SysUS, s.Switches, calls)
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Machine describes where the run happened: CPU, kernel, and the
// version of every tool involved.
func Machine() string {
	var b strings.Builder
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "- machine: %d × %s, Linux %s\n", runtime.NumCPU(), cpu, strings.TrimSpace(string(kernel)))
	fmt.Fprintf(&b, "- go: %s\n", runtime.Version())
	for _, v := range [][]string{
		{"nginx", "-v"}, {"haproxy", "-v"}, {"caddy", "version"}, {"wrk", "-v"}, {"h2load", "--version"},
	} {
		out, _ := exec.Command(v[0], v[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "- %s: %s\n", v[0], firstLine(strings.TrimSpace(string(out))))
	}
	return b.String()
}

// LoadAverage is the 1, 5 and 15 minute load average: other work on the
// machine shows here.
func LoadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
