package gateway_test

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingBackend is a real HTTP backend on loopback that counts the
// connections it accepted and has open, and the requests it answered and
// is answering. GET/POST /any?sleep=MS waits before answering; /ws echoes
// WebSocket messages. It never closes idle connections itself; with
// keepAlive set, it announces a Keep-Alive header on every answer.
type countingBackend struct {
	name     string
	ln       net.Listener
	srv      *http.Server
	accepted atomic.Int64
	open     atomic.Int64
	hits     atomic.Int64
	inflight atomic.Int64
	// keepAlive, if set, is sent as the Keep-Alive header, e.g. "timeout=60".
	keepAlive atomic.Pointer[string]
}

func newCountingBackend(t *testing.T, name string) *countingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBackend{name: name, ln: ln}
	upgrader := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.inflight.Add(1)
		defer b.inflight.Add(-1)
		if ms, _ := strconv.Atoi(r.URL.Query().Get("sleep")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		n, _ := ioCopyDiscard(r)
		b.hits.Add(1)
		w.Header().Set("X-Backend", name)
		if ka := b.keepAlive.Load(); ka != nil {
			w.Header().Set("Keep-Alive", *ka)
		}
		w.Write([]byte(name + " " + strconv.FormatInt(n, 10) + "\n"))
	})
	b.srv = &http.Server{Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
			b.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.open.Add(-1)
		}
	}}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *countingBackend) addr() string { return b.ln.Addr().String() }

func (b *countingBackend) port() int32 { return int32(b.ln.Addr().(*net.TCPAddr).Port) }

func ioCopyDiscard(r *http.Request) (int64, error) {
	var n int64
	buf := make([]byte, 4096)
	for {
		m, err := r.Body.Read(buf)
		n += int64(m)
		if err != nil {
			return n, nil
		}
	}
}
