package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/peerproc"
)

// Scenario is one load shape, run the same way against every peer.
type Scenario struct {
	Name string
	Desc string
	Path string
	// Tool is "wrk" or "h2load".
	Tool string
	// Header is an extra request header ("Connection: close").
	Header string
	// PostBody is the size of a POST body; 0 = GET.
	PostBody int
	// Conns and Streams: h2load's -c and -m; wrk uses Config.Connections.
	Conns, Streams int
}

// Scenarios lists every scenario, in table order.
var Scenarios = []Scenario{
	{Name: "small", Desc: "small GET, keep-alive", Path: "/small", Tool: "wrk"},
	{Name: "post1k", Desc: "1 KiB POST, keep-alive", Path: "/post", Tool: "wrk", PostBody: 1 << 10},
	{Name: "100k", Desc: "100 KiB response, keep-alive", Path: "/100k", Tool: "wrk"},
	{Name: "close", Desc: "small GET, new connection per request (Connection: close)", Path: "/small", Tool: "wrk", Header: "Connection: close"},
	{Name: "h2", Desc: "small GET over HTTP/2 in clear text (h2load, 8 connections × 8 streams)", Path: "/small", Tool: "h2load", Conns: 8, Streams: 8},
}

// Result is one load run against one peer.
type Result struct {
	Requests       int64
	Errors         int64 // connect, read, write and timeout errors, and non-2xx/3xx answers
	Elapsed        time.Duration
	P50, P99, P999 time.Duration
}

// RPS is requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// wrkScript prints wrk's results on one line, so they are read exactly
// rather than scraped from its human-readable summary, and sets the method
// and body for a POST.
func wrkScript(sc Scenario) string {
	var b strings.Builder
	if sc.PostBody > 0 {
		fmt.Fprintf(&b, "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", sc.PostBody)
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d p50=%d p99=%d p999=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
`)
	return b.String()
}

var benchLine = regexp.MustCompile(`BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) p50=(\d+) p99=(\d+) p999=(\d+)`)

// parseWrk reads the line wrkScript prints.
func parseWrk(out string) (Result, error) {
	m := benchLine.FindStringSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("no result line in wrk's output:\n%s", peerproc.Tail([]byte(out), 1000))
	}
	n := make([]int64, len(m))
	for i := 1; i < len(m); i++ {
		n[i], _ = strconv.ParseInt(m[i], 10, 64)
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Result{Requests: n[1], Elapsed: us(n[2]), Errors: n[3], P50: us(n[4]), P99: us(n[5]), P999: us(n[6])}, nil
}

// load runs one scenario's load generator against addr, pinned to cpu.
type load struct {
	wrk, h2load string // resolved paths; "" = not installed
	cpu         string
	conns       int
	dir         string // scratch files
}

func (l *load) run(ctx context.Context, sc Scenario, addr string, d time.Duration) (Result, error) {
	if sc.Tool == "h2load" {
		return l.runH2load(ctx, sc, addr, d)
	}
	script := filepath.Join(l.dir, "wrk-"+sc.Name+".lua")
	if err := os.WriteFile(script, []byte(wrkScript(sc)), 0o644); err != nil {
		return Result{}, err
	}
	args := []string{"-c", l.cpu, l.wrk, "-t1", "-c" + strconv.Itoa(l.conns), "-d" + seconds(d), "--timeout", "5s", "-s", script}
	if sc.Header != "" {
		args = append(args, "-H", sc.Header)
	}
	args = append(args, "http://"+addr+sc.Path)
	out, err := command(ctx, d+15*time.Second, "taskset", args...)
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w: %s", err, peerproc.Tail(out, 1000))
	}
	return parseWrk(string(out))
}

func (l *load) runH2load(ctx context.Context, sc Scenario, addr string, d time.Duration) (Result, error) {
	logPath := filepath.Join(l.dir, "h2load.log")
	os.Remove(logPath)
	args := []string{"-c", l.cpu, l.h2load, "-t1", "-c" + strconv.Itoa(sc.Conns), "-m" + strconv.Itoa(sc.Streams),
		"-D" + seconds(d), "--log-file=" + logPath, "http://" + addr + sc.Path}
	out, err := command(ctx, d+15*time.Second, "taskset", args...)
	if err != nil {
		return Result{}, fmt.Errorf("h2load: %w: %s", err, peerproc.Tail(out, 1000))
	}
	f, err := os.Open(logPath)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	return parseH2load(string(out), f, d)
}

var (
	h2Requests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Finished = regexp.MustCompile(`finished in ([0-9.]+)(s|ms)`)
)

// parseH2load reads h2load's summary and its per-request log (start µs,
// status, duration µs; tab separated) for the latency percentiles, which
// h2load does not print itself.
func parseH2load(out string, log io.Reader, d time.Duration) (Result, error) {
	m := h2Requests.FindStringSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("no request counts in h2load's output:\n%s", peerproc.Tail([]byte(out), 1000))
	}
	var r Result
	succeeded, _ := strconv.ParseInt(m[4], 10, 64)
	failed, _ := strconv.ParseInt(m[5], 10, 64)
	errored, _ := strconv.ParseInt(m[6], 10, 64)
	timedOut, _ := strconv.ParseInt(m[7], 10, 64)
	r.Requests = succeeded + failed
	r.Errors = failed + errored + timedOut
	r.Elapsed = d
	if f := h2Finished.FindStringSubmatch(out); f != nil {
		v, _ := strconv.ParseFloat(f[1], 64)
		if f[2] == "ms" {
			v /= 1000
		}
		r.Elapsed = time.Duration(v * float64(time.Second))
	}
	var lat []time.Duration
	sc := bufio.NewScanner(log)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			continue
		}
		us, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil {
			continue
		}
		if st, _ := strconv.Atoi(f[1]); st < 200 || st >= 400 {
			r.Errors++
		}
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return Result{}, err
	}
	if len(lat) == 0 {
		return Result{}, errors.New("h2load logged no requests")
	}
	slices.Sort(lat)
	r.P50, r.P99, r.P999 = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)
	return r, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func seconds(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + "s"
}

// command runs name with args, bounded by timeout, and returns its
// combined output. Only the process it started is killed on timeout.
func command(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	return cmd.CombinedOutput()
}
