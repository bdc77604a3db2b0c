package chaos

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
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

// TemplateData is what a Command's config template and args are filled with.
type TemplateData struct {
	Listen      string   // 127.0.0.1:PORT, where clients connect
	AdminListen string   // 127.0.0.1:PORT2, for proxies with an admin port
	Upstreams   []string // host:port of every upstream endpoint
	Dir         string   // a private temp dir (config, pid and log files)
	Config      string   // path of the rendered config file
}

// Command is a Proxy run as an external process from a config template.
type Command struct {
	ProxyName  string
	ConfigName string // file name of the rendered config, e.g. "nginx.conf"
	Template   string // text/template source of the config, with TemplateData
	// Args is the command line; each element is a template with TemplateData.
	Args []string
	// Env is added to the process environment; values are templates too.
	Env []string
	// ReadyTimeout bounds the wait for Listen to accept; default 10s.
	ReadyTimeout time.Duration
	// Output, if set, also gets the process's stdout and stderr.
	Output io.Writer
}

var _ Proxy = (*Command)(nil)

// Name is ProxyName.
func (c *Command) Name() string { return c.ProxyName }

// Start renders the config into a temp dir, starts the process and waits
// until Listen accepts. stop sends SIGTERM, waits up to 5s, then SIGKILLs the
// process it started, and removes the dir. The process's output is kept in
// Dir/output.log and quoted in start errors.
func (c *Command) Start(ctx context.Context, upstreams []string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "sluice-chaos-"+c.ProxyName+"-")
	if err != nil {
		return "", nil, err
	}
	os.Chmod(dir, 0o755) // nginx workers may run as another user
	ports, err := peerproc.FreePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	data := TemplateData{
		Listen:      "127.0.0.1:" + strconv.Itoa(ports[0]),
		AdminListen: "127.0.0.1:" + strconv.Itoa(ports[1]),
		Upstreams:   upstreams,
		Dir:         dir,
		Config:      filepath.Join(dir, c.ConfigName),
	}
	cfg, err := peerproc.Render(c.Template, data)
	if err == nil {
		err = os.WriteFile(data.Config, []byte(cfg), 0o644)
	}
	var args, env []string
	for _, a := range c.Args {
		if err != nil {
			break
		}
		var s string
		s, err = peerproc.Render(a, data)
		args = append(args, s)
	}
	for _, e := range c.Env {
		if err != nil {
			break
		}
		var s string
		s, err = peerproc.Render(e, data)
		env = append(env, s)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	logPath := filepath.Join(dir, "output.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out io.Writer = logFile
	if c.Output != nil {
		out = io.MultiWriter(logFile, c.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("%s: %w", c.ProxyName, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}
	timeout := c.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if err := peerproc.WaitListening(ctx, data.Listen, timeout, exited); err != nil {
		out, _ := os.ReadFile(logPath)
		stop()
		return "", nil, fmt.Errorf("%s: %w; output:\n%s", c.ProxyName, err, peerproc.Tail(out, 2000))
	}
	return data.Listen, stop, nil
}

func mustTemplate(name string) string {
	b, err := templates.ReadFile("templates/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Sluice runs `bin run --config FILE` with the shipped-defaults config.
func Sluice(bin string) *Command {
	return &Command{
		ProxyName:  "sluice",
		ConfigName: "sluice.yaml",
		Template:   mustTemplate("sluice.yaml.tmpl"),
		Args:       []string{bin, "run", "--config", "{{.Config}}"},
	}
}

// Nginx runs nginx in the foreground with upstream keep-alive.
func Nginx() *Command {
	return &Command{
		ProxyName:  "nginx",
		ConfigName: "nginx.conf",
		Template:   mustTemplate("nginx.conf.tmpl"),
		Args:       []string{"nginx", "-e", "stderr", "-p", "{{.Dir}}", "-c", "{{.Config}}", "-g", "daemon off;"},
	}
}

// HAProxy runs haproxy in the foreground.
func HAProxy() *Command {
	return &Command{
		ProxyName:  "haproxy",
		ConfigName: "haproxy.cfg",
		Template:   mustTemplate("haproxy.cfg.tmpl"),
		Args:       []string{"haproxy", "-db", "-f", "{{.Config}}"},
	}
}

// Caddy runs caddy with a Caddyfile, its state kept in the temp dir.
func Caddy() *Command {
	return &Command{
		ProxyName:  "caddy",
		ConfigName: "Caddyfile",
		Template:   mustTemplate("Caddyfile.tmpl"),
		Args:       []string{"caddy", "run", "--config", "{{.Config}}", "--adapter", "caddyfile"},
		Env:        []string{"XDG_DATA_HOME={{.Dir}}", "XDG_CONFIG_HOME={{.Dir}}", "HOME={{.Dir}}"},
	}
}

// ProxyByName returns the proxy the CLI calls name: baseline, sluice (needs
// sluiceBin), nginx, haproxy or caddy.
func ProxyByName(name, sluiceBin string) (Proxy, error) {
	switch name {
	case "baseline":
		return &Baseline{}, nil
	case "sluice":
		if sluiceBin == "" {
			return nil, errors.New("proxy sluice needs the path of the sluice binary")
		}
		return Sluice(sluiceBin), nil
	case "nginx":
		return Nginx(), nil
	case "haproxy":
		return HAProxy(), nil
	case "caddy":
		return Caddy(), nil
	}
	return nil, fmt.Errorf("unknown proxy %q", name)
}

// ProxyNames lists the names ProxyByName knows, in table order.
var ProxyNames = []string{"baseline", "sluice", "nginx", "haproxy", "caddy"}
