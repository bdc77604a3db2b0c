package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// recordingConn keeps every byte read from the connection.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.got.Bytes())
}

// wsEchoBackend is a gorilla WebSocket server that echoes messages and, on
// a close frame, answers it (gorilla's default) and closes the connection.
func wsEchoBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// On a drain the client gets exactly one close frame, the gateway's 1001:
// the backend's reply to the gateway's close is not relayed as a second
// one (which browsers take as a failed connection).
func TestDrainSendsWebSocketClientOneCloseFrame(t *testing.T) {
	backend := wsEchoBackend(t)
	g, err := gatewaytest.TryStart(`
		upstreams:
		  b:
		    endpoints: ["` + backend + `"]
		routes:
		  - id: ws
		    uri: lb://b`)
	if err != nil {
		t.Fatal(err)
	}
	defer gatewaytest.Stop(g)
	var rec *recordingConn
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		rec = &recordingConn{Conn: c}
		return rec, nil
	}}
	c, _, err := d.Dial("ws://"+g.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stopped := make(chan string, 1)
	go func() { stopped <- g.Stop(context.Background()) }() // drain delay 0, timeout 1s
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage() // gorilla answers the close frame
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("client got %v, want close 1001", err)
	}
	// The gateway ends the connection once the backend closed it.
	c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c.NetConn()); err != nil {
		t.Fatalf("the gateway did not end the connection after the close handshake: %v", err)
	}
	got := rec.bytes()
	i := bytes.Index(got, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no 101 response in %q", got)
	}
	if after, want := got[i+4:], []byte{0x88, 0x02, 0x03, 0xe9}; !bytes.Equal(after, want) {
		t.Fatalf("after the 101 the client got % x, want one close frame 1001 (% x)", after, want)
	}
	if summary := <-stopped; summary == "" {
		t.Fatal("no drain summary")
	}
}

// The access-log line of a WebSocket counts the bytes spliced each way.
func TestWebSocketAccessLogCountsBytes(t *testing.T) {
	backend := wsEchoBackend(t)
	var log gatewaytest.SafeBuffer
	g := gatewaytest.Start(t, `
		upstreams:
		  b:
		    endpoints: ["`+backend+`"]
		routes:
		  - id: ws
		    uri: lb://b`, gatewaytest.WithLog(&log))
	c, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("x"), 1000)
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, m, err := c.ReadMessage(); err != nil || !bytes.Equal(m, msg) {
		t.Fatalf("echo: %v", err)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close: %v", err)
	}
	c.Close() // the splice ends when both sides have
	var line map[string]any
	for deadline := time.Now().Add(5 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range accessLines(&log) {
			if l["status"] == float64(http.StatusSwitchingProtocols) {
				line = l
			}
		}
	}
	if line == nil {
		t.Fatalf("no access line for the WebSocket in %s", log.String())
	}
	// A 1000-byte message is a 1004-byte frame from the server and 1008
	// masked from the client; the close frames come on top.
	if in, out := line["bytes_in"].(float64), line["bytes_out"].(float64); in < 1008 || out < 1004 {
		t.Fatalf("access line counts %v bytes in, %v out; want at least 1008 and 1004", in, out)
	}
}
