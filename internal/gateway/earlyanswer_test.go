package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

// A backend that refuses an upload after reading part of it (413, a JSON
// body, Connection: close) is answered through to the client at once, and
// the client may finish sending its upload without its connection being
// reset under it: the rest is read and discarded. The client here is a raw
// socket, so that every write's fate is seen.
func TestEarlyAnswerReachesUploaderWhoseRestIsDiscarded(t *testing.T) {
	t.Parallel()
	be, err := backend.Start(backend.Options{EarlyAnswerOver: 1 << 20, EarlyAnswerRead: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	g := startOne(t, be.Addr(), "")
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const size, chunk = 4 << 20, 64 << 10
	if _, err := c.Write([]byte("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 4194304\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Error(err)
			close(answered)
			return
		}
		answered <- resp
	}()
	buf := []byte(strings.Repeat("u", chunk))
	var resp *http.Response
	for sent := 0; sent < size; sent += chunk {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("upload write at %d of %d bytes failed (answer: %v): %v", sent, size, resp != nil, err)
		}
		select {
		case resp = <-answered:
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp == nil {
		resp = <-answered
	}
	if resp == nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %v, want the backend's 413", resp)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want the backend's application/json", ct)
	}
}

// The same early answer reaches a client that asked for 100-continue: Go's
// own client waits for the interim response, uploads, and gets the 413 with
// its JSON, not an error.
func TestEarlyAnswerReachesClientExpecting100Continue(t *testing.T) {
	t.Parallel()
	be, err := backend.Start(backend.Options{EarlyAnswerOver: 1 << 20, EarlyAnswerRead: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	g := startOne(t, be.Addr(), "")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	body := io.NopCloser(io.LimitReader(slowZeros{}, 4<<20))
	req, _ := http.NewRequest("POST", "http://"+g.Addr()+"/upload", body)
	req.ContentLength = 4 << 20
	req.Header.Set("Expect", "100-continue")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("upload with Expect: 100-continue: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || string(got) != backend.EarlyAnswer {
		t.Fatalf("got %d %q (%v), want the backend's 413 and JSON", resp.StatusCode, got, err)
	}
}

// slowZeros is an endless upload of 64 KiB every 10ms.
type slowZeros struct{}

func (slowZeros) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	n := min(len(p), 64<<10)
	clear(p[:n])
	return n, nil
}
