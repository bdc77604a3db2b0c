// Command sluice is an API gateway.
//
//	sluice run --config FILE        run the gateway (-c FILE; default sluice.yaml)
//	sluice validate --config FILE   check a config: prints ok, or every problem as FILE:LINE:COL: field: message
//	sluice demo [--config FILE]     run the quickstart with two demo backends (examples/quickstart.yaml)
//	sluice convert scg FILE         print a Spring Cloud Gateway application.yml as native config
//	sluice version
//
// run and validate also accept a Spring Cloud Gateway application.yml,
// recognised by its top-level spring key (docs/spring-import.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"

	"golang.org/x/term"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/config/scg"
	"github.com/sluice-gw/sluice/internal/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  sluice run --config FILE        run the gateway (-c FILE; default sluice.yaml)
  sluice validate --config FILE   check a config file
  sluice demo [--config FILE]     run examples/quickstart.yaml with its two demo backends
  sluice convert scg FILE         print a Spring Cloud Gateway application.yml as native config
  sluice version

run and validate also accept a Spring Cloud Gateway application.yml.
`)
}

func run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := argv[0], argv[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "sluice", versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	case "convert":
		return convert(rest, stdout, stderr)
	case "run", "validate", "demo":
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := "sluice.yaml"
	if cmd == "demo" {
		def = "examples/quickstart.yaml"
	}
	var path string
	fs.StringVar(&path, "config", def, "config file")
	fs.StringVar(&path, "c", def, "config file (shorthand)")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	switch cmd {
	case "validate":
		return validate(path, stdout, stderr)
	case "demo":
		return demo(path, stdout, stderr)
	}
	return serve(path, stderr)
}

// validate reports every problem of the file at once: syntax and schema
// errors, and unknown or misused predicates and filters.
func validate(path string, stdout, stderr io.Writer) int {
	data, err := config.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", path, err)
		return 1
	}
	var cfg *config.Config
	var errs config.Errors
	if scg.IsSpring(data) {
		var warnings config.Errors
		cfg, errs, warnings = scg.Import(path, data, os.LookupEnv)
		printWarnings(warnings, stderr)
	} else {
		cfg, errs = config.ParseAll(path, data)
	}
	if cfg != nil {
		for _, e := range gateway.CheckDefinitions(cfg) {
			// A Spring filter the import already reported (TokenRelay) is not also an unknown one.
			if !slices.ContainsFunc(errs, func(x *config.Error) bool { return x.Line == e.Line && x.Col == e.Col && x.Path == e.Path }) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) == 0 {
		if err := gateway.Validate(cfg); err != nil {
			if !errors.As(err, &errs) {
				fmt.Fprintf(stdout, "%s: %v\n", path, err)
				return 1
			}
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(stdout, slices.CompactFunc(sortErrors(errs), func(a, b *config.Error) bool { return *a == *b }).Error())
		return 1
	}
	printWarnings(cfg.Warnings, stderr)
	fmt.Fprintln(stdout, "ok")
	return 0
}

// sortErrors orders problems by position, as the config package does.
func sortErrors(errs config.Errors) config.Errors {
	slices.SortStableFunc(errs, func(a, b *config.Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return errs
}

// serve runs the gateway until SIGTERM or SIGINT, then drains; a second
// signal ends the drain at once.
func serve(path string, stderr io.Writer) int {
	cfg, warnings, err := scg.Load(path)
	printWarnings(warnings, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx, force := signals(log)
	g, err := gateway.StartConfig(path, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for {
		select {
		case <-hup:
			g.Reload()
			continue
		case <-ctx.Done():
		case <-g.Draining():
		}
		break
	}
	log.Info("drain started")
	log.Info(g.Stop(force))
	return 0
}

// convert runs "sluice convert scg FILE": the native config on stdout, and
// every Spring property not converted on stderr, as errors (Sluice cannot do
// what it does) and warnings (harmless). The exit code is 0 when the file was
// converted with warnings at most; 1 when it lists errors (the native config
// is still printed, for the user to complete) or cannot be read or parsed.
func convert(argv []string, stdout, stderr io.Writer) int {
	if len(argv) != 2 || argv[0] != "scg" {
		fmt.Fprintln(stderr, "usage: sluice convert scg FILE")
		return 2
	}
	path := argv[1]
	data, err := config.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return 1
	}
	res, err := scg.Convert(path, data, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if !scg.IsSpring(data) {
		fmt.Fprintf(stderr, "%s: not a Spring application.yml (no top-level spring key)\n", path)
		return 1
	}
	stdout.Write(res.Marshal())
	errs := res.Errors
	if res.Locator != nil {
		errs = append(errs, res.Locator)
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, "error:", e)
	}
	printWarnings(res.Warnings, stderr)
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// printWarnings lists what a config allows but probably should not (an open
// admin port), and the harmless Spring properties that were not imported.
func printWarnings(warnings config.Errors, stderr io.Writer) {
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
}

// signals returns a context cancelled by the first SIGTERM/SIGINT and one
// cancelled by the second.
func signals(log *slog.Logger) (first, second context.Context) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	first, stop1 := context.WithCancel(context.Background())
	second, stop2 := context.WithCancel(context.Background())
	go func() {
		s := <-ch
		log.Info("signal received, draining", "signal", s.String())
		stop1()
		s = <-ch
		log.Warn("second signal, exiting now", "signal", s.String())
		stop2()
	}()
	return first, second
}

// newLogger logs at c.Level in c.Format: text (key=value) or JSON, the
// same fields either way; auto is text when w is a terminal, where a person
// reads it, and JSON otherwise, where a collector does.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" || c.Format == "auto" && isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
