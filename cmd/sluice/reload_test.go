package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func namedBackend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSIGHUPReload runs `sluice run` in process: SIGHUP reloads a changed
// file; an invalid file is rejected with its position in the log and the
// old config keeps serving. Not parallel: the signal reaches the process.
func TestSIGHUPReload(t *testing.T) {
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	listen, admin := freeAddr(t), freeAddr(t)
	config := func(backend, extra string) []string {
		return []string{
			"server: {listen: '" + listen + "'}",
			"admin: {listen: '" + admin + "'}",
			"drain: {delay: 0s, timeout: 1s}",
			"reload: {watch: false}",
			"upstreams:",
			"  be: {endpoints: ['" + backend + "']}",
			"routes:",
			"  - {id: r, uri: 'lb://be'" + extra + "}",
		}
	}
	path := writeConfig(t, config(a, "")...)
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- serve(path, logs) }()
	get := func() string {
		resp, err := http.Get("http://" + listen + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s; log:\n%s", what, logs.String())
			}
		}
	}
	eventually("never served backend a", func() bool { return get() == "a" })

	overwrite := func(lines []string) {
		t.Helper()
		if err := writeFile(path, strings.Join(lines, "\n")+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	overwrite(config(b, ""))
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	eventually("SIGHUP did not reload", func() bool { return get() == "b" })

	overwrite(config(a, ", predicates: [Paht=/x]"))
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	eventually("the rejected reload was not logged", func() bool { return strings.Contains(logs.String(), "reload rejected") })
	if !strings.Contains(logs.String(), path+`:8:`) || !strings.Contains(logs.String(), `unknown predicate \"Paht\"`) {
		t.Errorf("the log does not place the problem like sluice validate:\n%s", logs.String())
	}
	if got := get(); got != "b" {
		t.Errorf("after a rejected reload: %q, want b (the old config)", got)
	}

	resp, err := http.Post("http://"+admin+"/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case rc := <-done:
		if rc != 0 {
			t.Errorf("exit %d", rc)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sluice run did not exit after a drain")
	}
}

func writeFile(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
