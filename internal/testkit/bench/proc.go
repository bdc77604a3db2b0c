package bench

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// stat is what the tool reads from /proc/PID/stat.
type stat struct {
	ppid      int
	user, sys time.Duration // utime, stime
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return stat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return stat{}, errors.New("short /proc stat")
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return stat{}, err
	}
	return stat{ppid: ppid, user: time.Duration(ut) * clockTick, sys: time.Duration(st) * clockTick}, nil
}

// tree returns pid and all its descendants (pid first).
func tree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(p); err == nil {
			children[s.ppid] = append(children[s.ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// usage is what processes have used so far: CPU time in user and kernel
// mode, and context switches (voluntary and not) of all their threads.
type usage struct {
	user, sys time.Duration
	switches  int64
}

func (u usage) sub(v usage) usage {
	return usage{user: u.user - v.user, sys: u.sys - v.sys, switches: u.switches - v.switches}
}

// treeUsage sums usage over pids (a process's /proc stat counts all its
// threads' CPU; context switches are counted per thread).
func treeUsage(pids []int) usage {
	var u usage
	for _, p := range pids {
		if s, err := readStat(p); err == nil {
			u.user += s.user
			u.sys += s.sys
		}
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, t := range tasks {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/status"); err == nil {
				u.switches += parseSwitches(b)
			}
		}
	}
	return u
}

// parseSwitches adds voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// from a /proc status file.
func parseSwitches(b []byte) int64 {
	var n int64
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
			x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// resetPeakRSS sets each process's VmHWM back to its current RSS
// (clear_refs "5", Linux 4.0+), so a peak is measured per run.
func resetPeakRSS(pids []int) {
	for _, p := range pids {
		os.WriteFile("/proc/"+strconv.Itoa(p)+"/clear_refs", []byte("5"), 0)
	}
}

// peakRSS sums VmHWM (peak resident set size) over pids, in bytes.
func peakRSS(pids []int) int64 {
	var sum int64
	for _, p := range pids {
		f, err := os.Open("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			continue
		}
		sum += parseHWM(f)
		f.Close()
	}
	return sum
}

func parseHWM(f *os.File) int64 {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
