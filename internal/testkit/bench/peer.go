package bench

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/peerproc"
)

//go:embed templates/*.tmpl
var templates embed.FS

// TemplateData is what a Peer's config template and arguments are filled with.
type TemplateData struct {
	Listen      string // 127.0.0.1:PORT, HTTP/1.1 (and h2c where the peer serves both on one port)
	H2Listen    string // 127.0.0.1:PORT, h2c with prior knowledge, for peers that need their own listener
	AdminListen string // 127.0.0.1:PORT, for peers with an admin port
	Upstream    string // host:port of the backend
	Dir         string // a private temp dir (config, pid, output)
	Config      string // path of the rendered config file
	Root        string // the backend's document root
	Self        string // this executable (for the built-in baseline)
}

// H2 says how a peer serves cleartext HTTP/2.
type H2 int

const (
	H2SamePort H2 = iota // h2c with prior knowledge on Listen
	H2OwnPort            // h2c with prior knowledge on H2Listen
	H2None               // no h2c (not in the peer's default package, or HTTP/1.1 only)
)

// Peer is a proxy run as a process from a config template.
type Peer struct {
	Name       string
	Binary     string // must be in PATH (or a path); checked before anything runs
	ConfigName string // file name of the rendered config
	Template   string // template file in templates/
	Args       []string
	Env        []string
	H2         H2
	// Pprof: AdminListen serves /debug/pprof.
	Pprof bool
}

// Peers returns the proxies the tool knows, in table order. sluiceBin is the
// sluice executable; self is this executable (the baseline and the floor
// and the floors run in it).
func Peers(sluiceBin, self string) []*Peer {
	return []*Peer{
		{Name: "sluice", Binary: sluiceBin, ConfigName: "sluice.yaml", Template: "sluice.yaml.tmpl",
			Args: []string{"run", "--config", "{{.Config}}"}, H2: H2SamePort, Pprof: true},
		{Name: "nginx", Binary: "nginx", ConfigName: "nginx.conf", Template: "nginx.conf.tmpl",
			Args: []string{"-e", "stderr", "-p", "{{.Dir}}", "-c", "{{.Config}}", "-g", "daemon off;"}, H2: H2OwnPort},
		{Name: "haproxy", Binary: "haproxy", ConfigName: "haproxy.cfg", Template: "haproxy.cfg.tmpl",
			Args: []string{"-db", "-f", "{{.Config}}"}, H2: H2OwnPort},
		{Name: "caddy", Binary: "caddy", ConfigName: "Caddyfile", Template: "Caddyfile.tmpl",
			Args: []string{"run", "--config", "{{.Config}}", "--adapter", "caddyfile"},
			Env:  []string{"XDG_DATA_HOME={{.Dir}}", "XDG_CONFIG_HOME={{.Dir}}", "HOME={{.Dir}}"}, H2: H2SamePort},
		{Name: "baseline", Binary: self, Args: []string{"baseline", "--listen", "{{.Listen}}", "--upstream", "{{.Upstream}}"},
			H2: H2SamePort},
		{Name: "floor", Binary: self, Args: []string{"floor", "--listen", "{{.Listen}}", "--upstream", "{{.Upstream}}"},
			H2: H2SamePort},
		{Name: "fastfloor", Binary: self, Args: []string{"fastfloor", "--listen", "{{.Listen}}", "--upstream", "{{.Upstream}}"},
			H2: H2None},
	}
}

// backendPeer is the nginx that serves the static responses.
func backendPeer() *Peer {
	return &Peer{Name: "backend", Binary: "nginx", ConfigName: "nginx.conf", Template: "backend-nginx.conf.tmpl",
		Args: []string{"-e", "stderr", "-p", "{{.Dir}}", "-c", "{{.Config}}", "-g", "daemon off;"}}
}

// install hints say how to get a missing binary.
var installHints = map[string]string{
	"nginx":   "apt-get install -y nginx",
	"haproxy": "apt-get install -y haproxy",
	"caddy":   "apt-get install -y caddy",
	"wrk":     "apt-get install -y wrk",
	"h2load":  "apt-get install -y nghttp2-client",
	"taskset": "apt-get install -y util-linux",
}

// lookPath resolves bin, or says how to install it.
func lookPath(peer, bin string) (string, error) {
	p, err := exec.LookPath(bin)
	if err == nil {
		return p, nil
	}
	msg := fmt.Sprintf("%s: %q not found", peer, bin)
	if h, ok := installHints[filepath.Base(bin)]; ok {
		msg += " (install it: " + h + ")"
	}
	return "", errors.New(msg + "; or leave it out with --proxies")
}

// process is a started peer.
type process struct {
	name   string
	cmd    *exec.Cmd
	data   TemplateData
	exited chan struct{}
	output string // path of its output log
}

// start renders the peer's config into a fresh temp dir and starts it
// pinned to cpus (taskset), then waits until its listener accepts.
func start(ctx context.Context, p *Peer, data TemplateData, cpus string, verbose bool) (*process, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-"+p.Name+"-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755) // nginx workers may run as another user
	ports, err := peerproc.FreePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data.Listen = "127.0.0.1:" + strconv.Itoa(ports[0])
	data.H2Listen = "127.0.0.1:" + strconv.Itoa(ports[1])
	data.AdminListen = "127.0.0.1:" + strconv.Itoa(ports[2])
	data.Dir = dir
	if p.ConfigName != "" {
		data.Config = filepath.Join(dir, p.ConfigName)
		text, err := templates.ReadFile("templates/" + p.Template)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		cfg, err := peerproc.Render(string(text), data)
		if err == nil {
			err = os.WriteFile(data.Config, []byte(cfg), 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s: config: %w", p.Name, err)
		}
	}
	args := []string{"-c", cpus, p.Binary}
	var env []string
	for _, a := range p.Args {
		s, err := peerproc.Render(a, data)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, s)
	}
	for _, e := range p.Env {
		s, err := peerproc.Render(e, data)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		env = append(env, s)
	}
	logPath := filepath.Join(dir, "output.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// taskset execs the binary: the PID is the peer's own.
	cmd := exec.Command("taskset", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	pr := &process{name: p.Name, cmd: cmd, data: data, exited: make(chan struct{}), output: logPath}
	go func() { cmd.Wait(); logFile.Close(); close(pr.exited) }()
	addr := data.Listen
	if err := peerproc.WaitListening(ctx, addr, 15*time.Second, pr.exited); err != nil {
		out, _ := os.ReadFile(logPath)
		pr.stop()
		return nil, fmt.Errorf("%s: %w; output:\n%s", p.Name, err, peerproc.Tail(out, 2000))
	}
	return pr, nil
}

// h2Addr is where the peer serves h2c, or "" if it does not.
func (pr *process) h2Addr(p *Peer) string {
	switch p.H2 {
	case H2SamePort:
		return pr.data.Listen
	case H2OwnPort:
		return pr.data.H2Listen
	}
	return ""
}

// stop sends SIGTERM to the process it started and to that process's
// descendants (nginx workers), waits up to 5s, then SIGKILLs whichever of
// those PIDs is left, and removes the temp dir.
func (pr *process) stop() {
	pids := tree(pr.cmd.Process.Pid)
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.exited:
	case <-time.After(5 * time.Second):
		pr.cmd.Process.Kill()
		<-pr.exited
	}
	// Descendants left behind (an nginx worker whose master was killed) are
	// orphans now; a PID whose parent is anyone else was reused, not ours.
	for _, pid := range pids[1:] {
		if s, err := readStat(pid); err == nil && (s.ppid == 1 || s.ppid == pids[0]) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.RemoveAll(pr.data.Dir)
}
