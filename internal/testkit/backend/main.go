package backend

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main runs a backend as a process, as cmd/sluice-backend does: it parses
// args, prints "listening ADDR" to stdout when ready, and on SIGTERM or
// SIGINT shuts down in the -on-sigterm style and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts Options
	fs.StringVar(&opts.Addr, "listen", "127.0.0.1:0", "listen address")
	fs.StringVar(&opts.Name, "name", "", "backend name (default: the address)")
	fs.DurationVar(&opts.IdleTimeout, "idle-timeout", 0, "close keep-alive conns idle this long (0: never)")
	fs.StringVar(&opts.KeepAliveHeader, "keepalive-header", "", `Keep-Alive response header, e.g. "timeout=5, max=100"`)
	fs.IntVar(&opts.MaxRequestsPerConn, "max-requests", 0, "answer the Nth request on a conn with Connection: close (0: no limit)")
	fs.DurationVar(&opts.Latency, "latency", 0, "delay before every response")
	fs.IntVar(&opts.SilentCloseAfter, "silent-close-after", 0, "close a conn a few ms after its Nth response, without Connection: close (0: never)")
	fs.Int64Var(&opts.EarlyAnswerOver, "early-answer-over", 0, "answer uploads larger than this with 413 after reading part of them (0: never)")
	fs.StringVar(&opts.RecordFile, "record", "", "append processed X-Request-Ids to this file")
	fs.BoolVar(&opts.H2C, "h2c", false, "serve HTTP/2 cleartext (prior knowledge) too")
	fs.IntVar(&opts.MaxConcurrentStreams, "max-streams", 0, "HTTP/2 max concurrent streams (0: Go's default)")
	onTerm := fs.String("on-sigterm", "graceful", "shutdown style on SIGTERM: graceful, abrupt or reset")
	grace := fs.Duration("grace", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	style, err := ParseShutdownStyle(*onTerm)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)

	b, err := Start(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s\n", b.Addr())
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	err = b.Shutdown(ctx, style)
	b.Close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
