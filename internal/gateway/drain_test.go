package gateway_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// A WebSocket open when the gateway drains gets a close frame 1001 (going
// away) from the gateway, in both directions, and the drain does not cut it.
func TestDrainSendsWebSocketsGoingAway(t *testing.T) {
	var backendSaw atomic.Int32
	upgrader := websocket.Upgrader{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, _, err := c.ReadMessage()
			if ce, ok := err.(*websocket.CloseError); ok {
				backendSaw.Store(int32(ce.Code))
				return
			}
			if err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	g, err := gatewaytest.TryStart(`
		upstreams:
		  b:
		    endpoints: ["`+ln.Addr().String()+`"]
		routes:
		  - id: ws
		    uri: lb://b`)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan string, 1)
	go func() { stopped <- g.Stop(context.Background()) }() // drain delay 0, timeout 1s
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("client got %v, want close 1001", err)
	}
	summary := <-stopped
	if got := backendSaw.Load(); got != websocket.CloseGoingAway {
		t.Fatalf("backend saw close code %d, want 1001", got)
	}
	t.Log(summary)
}
