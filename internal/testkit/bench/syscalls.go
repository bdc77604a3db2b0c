package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// syscallCounter counts the system calls of running processes with perf
// stat (the raw_syscalls:sys_enter tracepoint) from start to stop. The
// tracepoint makes every system call of the counted processes a little
// slower, so runs that count are not for the main table's figures.
type syscallCounter struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// perfAttach is how long perf is given to attach before the load starts.
const perfAttach = 300 * time.Millisecond

func startSyscalls(perf string, pids []int) (*syscallCounter, error) {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	c := &syscallCounter{}
	c.cmd = exec.Command(perf, "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p", strings.Join(ids, ","))
	c.cmd.Stderr = &c.out
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(perfAttach)
	return c, nil
}

// stop ends the count (perf prints it on SIGINT) and returns it.
func (c *syscallCounter) stop() (int64, error) {
	c.cmd.Process.Signal(os.Interrupt)
	c.cmd.Wait() // perf's exit status after SIGINT says nothing; its output does
	return parsePerfCount(c.out.String())
}

// parsePerfCount reads the count from perf stat's CSV output (-x ,):
// "COUNT,UNIT,EVENT,...".
func parsePerfCount(out string) (int64, error) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) >= 3 && f[2] == "raw_syscalls:sys_enter" {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("perf stat: system calls not counted (%s)", f[0])
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("perf stat: no count in %q", firstLine(strings.TrimSpace(out)))
}
