package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluice-gw/sluice/internal/config"
)

// openPTY opens a pseudo-terminal pair: what a person's terminal is.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestLogFormatAuto checks that log.format auto writes text to a terminal
// and JSON to a pipe or file, that json and text are what they say
// anywhere, and that both carry the same fields.
func TestLogFormatAuto(t *testing.T) {
	master, tty := openPTY(t)
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	tests := []struct {
		name   string
		format string
		w      *os.File
		r      *os.File
		json   bool
	}{
		{name: "auto on a terminal: text", format: "auto", w: tty, r: master},
		{name: "auto on a pipe: json", format: "auto", w: pipeW, r: pipeR, json: true},
		{name: "json on a terminal", format: "json", w: tty, r: master, json: true},
		{name: "text on a pipe", format: "text", w: pipeW, r: pipeR},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := newLogger(config.Log{Level: "info", Format: tc.format}, tc.w)
			log.Info("access", "method", "GET", "client", "127.0.0.1", "status", 200)
			line, err := bufio.NewReader(tc.r).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimRight(line, "\r\n")
			var m map[string]any
			isJSON := json.Unmarshal([]byte(line), &m) == nil
			if isJSON != tc.json {
				t.Fatalf("line %q: JSON %v, want %v", line, isJSON, tc.json)
			}
			for _, f := range []string{"time", "level", "msg", "method", "client", "status"} {
				if tc.json && m[f] == nil || !tc.json && !strings.Contains(line, f+"=") {
					t.Errorf("line %q has no %s", line, f)
				}
			}
		})
	}
	var buf bytes.Buffer
	newLogger(config.Log{Level: "info", Format: "auto"}, &buf).Info("x")
	if !json.Valid(buf.Bytes()) {
		t.Errorf("auto on a buffer: %q, want JSON", buf.String())
	}
}
