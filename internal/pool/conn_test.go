package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testbackend "github.com/sluice-gw/sluice/internal/testkit/backend"
)

// slowBody is an upload of size bytes sent in chunks with a pause between
// them, as a client on a slow link sends it. It counts what was read.
type slowBody struct {
	left  int64
	chunk int
	pause time.Duration
	read  atomic.Int64
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	n := int64(min(len(p), b.chunk))
	n = min(n, b.left)
	clear(p[:n])
	b.left -= n
	b.read.Add(n)
	return int(n), nil
}

func (b *slowBody) Close() error { return nil }

// A backend that refuses a large upload after reading part of it answers
// 413 with a JSON body and closes: the caller gets that answer, whole, long
// before the upload would have ended, and the rest is not sent.
func TestEarlyResponseDuringUploadIsDelivered(t *testing.T) {
	b, err := testbackend.Start(testbackend.Options{EarlyAnswerOver: 1 << 20, EarlyAnswerRead: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := New(Options{Addr: b.Addr()})
	defer p.Drain(nil)
	const size = 8 << 20
	body := &slowBody{left: size, chunk: 32 << 10, pause: 10 * time.Millisecond} // 8 MiB over ~2.6s
	req, _ := http.NewRequest("POST", "http://"+b.Addr()+"/upload", body)
	req.ContentLength = size
	start := time.Now()
	resp, err := p.RoundTrip(context.Background(), req, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatalf("early 413 during the upload: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the early answer's body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(got) != testbackend.EarlyAnswer || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q %q, want 413 with the backend's JSON", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the early answer took %v: it waited for the upload", d)
	}
	if n := body.read.Load(); n > size/2 {
		t.Fatalf("%d of %d upload bytes were read after the answer", n, size)
	}
	if s := p.Stats(); s.Open != 0 || s.Active != 0 {
		t.Fatalf("the connection of an early answer must not be kept: %+v", s)
	}
}

// The response timeout bounds the wait for the answer once the request is
// written: an upload that takes longer than it is not cut.
func TestResponseTimeoutCountsFromEndOfUpload(t *testing.T) {
	b := startBackend(t, nil, 0) // reads the whole body, then answers
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	body := &slowBody{left: 64 << 10, chunk: 4 << 10, pause: 80 * time.Millisecond} // ~1.3s
	req, _ := http.NewRequest("POST", "http://"+b.addr()+"/", body)
	req.ContentLength = 64 << 10
	resp, err := p.RoundTrip(context.Background(), req, time.Now().Add(500*time.Millisecond))
	if err != nil {
		t.Fatalf("a 1.3s upload with a 500ms response timeout: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// The response timeout still ends a wait for an answer that never comes.
func TestResponseTimeoutEndsSilentBackend(t *testing.T) {
	hold := make(chan struct{})
	b := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); <-hold }, 0)
	defer close(hold)
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	req, _ := http.NewRequest("POST", "http://"+b.addr()+"/", bytes.NewReader(make([]byte, 10<<10)))
	start := time.Now()
	_, err := p.RoundTrip(context.Background(), req, time.Now().Add(300*time.Millisecond))
	var pe *Error
	if !errors.As(err, &pe) || pe.Stage != StageAwait || !isTimeout(pe.Err) {
		t.Fatalf("err = %v, want an await_response timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timed out after %v", d)
	}
}

// A backend that closes every connection a few ms after its Nth response,
// without saying so, is learned: once two connections have ended after the
// same number of responses, connections retire after N−1 and no request is
// sent into that close again. A request lost in one of those closes is known
// unread once the pattern shows, so every failure may be retried.
func TestSilentCloseAfterNResponsesIsLearned(t *testing.T) {
	const n = 5
	b, err := testbackend.Start(testbackend.Options{SilentCloseAfter: n, SilentCloseDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := New(Options{Addr: b.Addr()})
	defer p.Drain(nil)
	var (
		mu       sync.Mutex
		failures []*Error
		wg       sync.WaitGroup
	)
	// Open-loop load: a request every 2ms whatever the others do, as many
	// clients send; a request often follows a response on its connection at once.
	for range 300 {
		time.Sleep(2 * time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := get(t, p, http.MethodPost)
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Error(err)
					return
				}
				mu.Lock()
				failures = append(failures, pe)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 6 {
		t.Fatalf("%d requests failed: the close after %d responses was not learned (%v)", len(failures), n, failures)
	}
	for _, f := range failures {
		if !f.NotProcessed() {
			t.Fatalf("a request lost in the close after exactly %d responses is not known unread: %v", n, f)
		}
	}
	if s := p.Stats(); s.Closed[ReasonKeepAliveHint] < 5 {
		t.Fatalf("connections retired before the backend's close: %d, want most of them", s.Closed[ReasonKeepAliveHint])
	}
}

// A replayable body (the cluster's buffer, an io.NopCloser over a
// bytes.Reader) still leaves with its headers in one write, which the proof
// of non-processing needs.
func TestBufferedBodyLeavesInOneWrite(t *testing.T) {
	b := startBackend(t, nil, 0)
	p := New(Options{Addr: b.addr()})
	defer p.Drain(nil)
	req, _ := http.NewRequest("POST", "http://"+b.addr()+"/", nil)
	req.Body = io.NopCloser(bytes.NewReader(make([]byte, 1024)))
	req.ContentLength = 1024
	resp, err := p.RoundTrip(context.Background(), req, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	p.mu.Lock()
	c := p.idle[len(p.idle)-1]
	p.mu.Unlock()
	if c.cw.writes != 1 {
		t.Fatalf("request left in %d writes, want 1", c.cw.writes)
	}
}
