package discovery

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile replaces path atomically, as tools are told to.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func TestFileFollowsRewrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	writeFile(t, path, "endpoints:\n  - 127.0.0.1:9001\n  - {address: 127.0.0.1:9002, weight: 3}\n")
	logs := newSyncBuffer()
	c := run(t, &File{Path: path, Interval: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
	c.await(t, 2*time.Second, "127.0.0.1:9001", "127.0.0.1:9002")
	if w := c.last()[1].Weight; w != 3 {
		t.Fatalf("weight %d, want 3", w)
	}

	// JSON works too, and draining is carried through.
	writeFile(t, path, `{"endpoints": [{"address": "127.0.0.1:9002", "draining": true}, "127.0.0.1:9003"]}`)
	c.await(t, 2*time.Second, "127.0.0.1:9002 draining", "127.0.0.1:9003")

	// An invalid file keeps the last good set and says so in the log.
	n := c.count()
	writeFile(t, path, "endpoints:\n  - 127.0.0.1:9004\n  - address: nonsense\n")
	if !waitFor(2*time.Second, func() bool { return strings.Contains(logs.String(), "discovery file rejected") }) {
		t.Fatalf("no log line for an invalid file; log: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "endpoints.yaml:3: endpoints[1]") {
		t.Fatalf("log does not place the problem: %s", logs.String())
	}
	if c.count() != n || len(c.last()) != 2 {
		t.Fatalf("invalid file changed the set: %v", addrs(c.last()))
	}

	// A removed file keeps the set too; a good one is followed again.
	os.Remove(path)
	time.Sleep(100 * time.Millisecond)
	if c.count() != n {
		t.Fatalf("removed file changed the set: %v", addrs(c.last()))
	}
	writeFile(t, path, "endpoints: [127.0.0.1:9005]\n")
	c.await(t, 2*time.Second, "127.0.0.1:9005")
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{name: "unknown key", data: "endpoints:\n  - {address: 127.0.0.1:1, wieght: 2}\n", want: `line 2: unknown key "wieght"`},
		{name: "bad address", data: "endpoints:\n  - 127.0.0.1\n", want: "endpoints[0]: \"127.0.0.1\" is not a valid address"},
		{name: "bad port", data: "endpoints:\n  - 127.0.0.1:0\n", want: "is not in 1..65535"},
		{name: "duplicate", data: "endpoints:\n  - 127.0.0.1:1\n  - 127.0.0.1:1\n", want: ":3: endpoints[1]: duplicate endpoint"},
		{name: "weight", data: "endpoints:\n  - {address: 127.0.0.1:1, weight: 5000}\n", want: "weight must be between 1 and 1000"},
		{name: "not yaml", data: "endpoints: [\n", want: "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "e.yaml")
			os.WriteFile(path, []byte(tc.data), 0o644)
			_, err := ReadFile(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	c := run(t, Static{{Addr: "127.0.0.1:1", Weight: 1}})
	c.await(t, time.Second, "127.0.0.1:1")
}
