package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
	"github.com/sluice-gw/sluice/internal/testkit/relay"
)

// Config tunes a run. The zero value runs every scenario at its default
// size (each about 20 s or less).
type Config struct {
	// Scale multiplies every scenario's duration; default 1.
	Scale float64
	// KeepAlive is T of scenario 1 (the backend's idle timeout); default 1s.
	KeepAlive time.Duration
	// AdvertisedTimeout is N of scenario 2 (Keep-Alive: timeout=N), whole
	// seconds, 0 included; default 1s.
	AdvertisedTimeout *time.Duration
	// GapJitter is the ± around T of the client's gaps; default 50ms.
	GapJitter time.Duration
	// Rate of the open-loop load in requests per second; default 300.
	Rate float64
	// LatencyMin and LatencyMax bound the relays' one-way latency; default
	// 1ms and 5ms.
	LatencyMin, LatencyMax time.Duration
	// MiddleboxIdle is L of scenario 11; default 3s. Real ones are 240–900s:
	// a proxy passes only if it retires idle conns before L.
	MiddleboxIdle time.Duration
	// BackendCommand builds the command of a process backend from
	// sluice-backend's arguments. Default: this executable again, with
	// SLUICE_CHAOS_BACKEND=1 (see RunBackendIfChild).
	BackendCommand func(args []string) *exec.Cmd
	// Log, if set, gets progress lines.
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Scale <= 0 {
		c.Scale = 1
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = time.Second
	}
	if c.AdvertisedTimeout == nil {
		d := time.Second
		c.AdvertisedTimeout = &d
	}
	if c.GapJitter == 0 {
		c.GapJitter = 50 * time.Millisecond
	}
	if c.Rate == 0 {
		c.Rate = 300
	}
	if c.LatencyMin == 0 && c.LatencyMax == 0 {
		c.LatencyMin, c.LatencyMax = time.Millisecond, 5*time.Millisecond
	}
	if c.MiddleboxIdle == 0 {
		c.MiddleboxIdle = 3 * time.Second
	}
	if c.BackendCommand == nil {
		c.BackendCommand = selfBackendCommand
	}
}

// scaled returns d times the scale.
func (c *Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.Scale)
}

const childEnv = "SLUICE_CHAOS_BACKEND"

// RunBackendIfChild runs the test backend and exits if this process was
// started as a process backend by the default Config.BackendCommand. Call it
// first thing in main (and in TestMain of tests that run scenarios).
func RunBackendIfChild() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(backend.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func selfBackendCommand(args []string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}

// Env is what one scenario run sets up: backends, relays, the proxy and the
// client. Everything it starts is stopped by its cleanup, in reverse order.
type Env struct {
	cfg      *Config
	ctx      context.Context
	dir      string
	cleanups []func()

	mu        sync.Mutex
	backends  []*backend.Backend
	processes []*Process
}

func newEnv(ctx context.Context, cfg *Config) (*Env, error) {
	dir, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		return nil, err
	}
	e := &Env{cfg: cfg, ctx: ctx, dir: dir}
	e.defer_(func() { os.RemoveAll(dir) })
	return e, nil
}

func (e *Env) defer_(f func()) { e.cleanups = append(e.cleanups, f) }

func (e *Env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

func (e *Env) logf(format string, args ...any) {
	if e.cfg.Log != nil {
		fmt.Fprintf(e.cfg.Log, "  "+format+"\n", args...)
	}
}

// Backend starts an in-process backend.
func (e *Env) Backend(opts backend.Options) (*backend.Backend, error) {
	b, err := backend.Start(opts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.backends = append(e.backends, b)
	e.mu.Unlock()
	e.defer_(func() { b.Close() })
	return b, nil
}

// Relay starts a relay to target with the configured latency.
func (e *Env) Relay(target string) (*relay.Relay, error) {
	r, err := relay.Start(target, relay.Uniform(e.cfg.LatencyMin, e.cfg.LatencyMax))
	if err != nil {
		return nil, err
	}
	e.defer_(func() { r.Close() })
	return r, nil
}

// Replica is one backend and the relay in front of it.
type Replica struct {
	Name    string
	Backend *backend.Backend // nil for a process backend
	Process *Process         // nil for an in-process backend
	Relay   *relay.Relay
}

// Replicas starts n in-process backends named b1…bn, each behind a relay.
func (e *Env) Replicas(n int, opts backend.Options) ([]*Replica, error) {
	var rs []*Replica
	for i := range n {
		o := opts
		o.Name = "b" + strconv.Itoa(i+1)
		b, err := e.Backend(o)
		if err != nil {
			return nil, err
		}
		r, err := e.Relay(b.Addr())
		if err != nil {
			return nil, err
		}
		rs = append(rs, &Replica{Name: o.Name, Backend: b, Relay: r})
	}
	return rs, nil
}

// ProcessReplicas is Replicas with process backends (cmd/sluice-backend),
// for scenarios that SIGTERM or SIGKILL one.
func (e *Env) ProcessReplicas(n int, opts backend.Options, onSigterm backend.ShutdownStyle) ([]*Replica, error) {
	var rs []*Replica
	for i := range n {
		o := opts
		o.Name = "b" + strconv.Itoa(i+1)
		p, err := e.StartProcess(o, onSigterm)
		if err != nil {
			return nil, err
		}
		r, err := e.Relay(p.Addr)
		if err != nil {
			return nil, err
		}
		rs = append(rs, &Replica{Name: o.Name, Process: p, Relay: r})
	}
	return rs, nil
}

// Addrs are the relays' addresses: the proxy's upstreams.
func Addrs(rs []*Replica) []string {
	addrs := make([]string, len(rs))
	for i, r := range rs {
		addrs[i] = r.Relay.Addr()
	}
	return addrs
}

// Process is a backend running as a process of its own.
type Process struct {
	Name   string
	Addr   string
	Record string // its record file
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProcess starts a process backend and waits for "listening ADDR".
func (e *Env) StartProcess(opts backend.Options, onSigterm backend.ShutdownStyle) (*Process, error) {
	rec := filepath.Join(e.dir, opts.Name+".rec")
	args := []string{
		"-listen", "127.0.0.1:0", "-name", opts.Name, "-record", rec,
		"-on-sigterm", onSigterm.String(),
		"-idle-timeout", opts.IdleTimeout.String(),
		"-latency", opts.Latency.String(),
		"-max-requests", strconv.Itoa(opts.MaxRequestsPerConn),
	}
	if opts.KeepAliveHeader != "" {
		args = append(args, "-keepalive-header", opts.KeepAliveHeader)
	}
	if opts.H2C {
		args = append(args, "-h2c")
	}
	cmd := e.cfg.BackendCommand(args)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Name: opts.Name, Record: rec, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	e.mu.Lock()
	e.processes = append(e.processes, p)
	e.mu.Unlock()
	e.defer_(func() { p.Kill() })

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "listening ")
		if !ok {
			return nil, fmt.Errorf("backend process %s: first line %q", opts.Name, s)
		}
		p.Addr = addr
		return p, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("backend process %s did not start", opts.Name)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.exited:
		return nil
	case <-time.After(d):
		return errors.New("backend process " + p.Name + " did not exit")
	}
}

// Kill SIGKILLs the process if it is still running, and reaps it.
func (p *Process) Kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Records is the union of every backend's records, in-process or not.
func (e *Env) Records() []backend.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var recs []backend.Record
	for _, b := range e.backends {
		recs = append(recs, b.Processed()...)
	}
	for _, p := range e.processes {
		r, _ := backend.ReadRecords(p.Record)
		recs = append(recs, r...)
	}
	return recs
}

// StartProxy starts p in front of upstreams.
func (e *Env) StartProxy(p Proxy, upstreams []string) (string, error) {
	addr, stop, err := p.Start(e.ctx, upstreams)
	if err != nil {
		return "", err
	}
	e.defer_(stop)
	return addr, nil
}

// Client returns a client of the proxy at addr.
func (e *Env) Client(addr string, opts ClientOptions) *Client {
	c := NewClient(addr, opts)
	e.defer_(c.Close)
	return c
}

// after runs f after d in its own goroutine, unless the run ends first;
// the returned func waits for f to have run or been skipped.
func (e *Env) after(d time.Duration, f func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if sleepUntil(e.ctx, time.Now().Add(d)) {
			f()
		}
	}()
	e.defer_(func() { <-done })
	return func() { <-done }
}
