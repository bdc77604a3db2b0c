package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// An idle keep-alive client connection is released after
// release_idle_after and keeps serving its client as the same connection:
// the client reuses it, the gateway counts one accepted connection, and the
// released gauge follows.
func TestListenerReleasesIdleConnections(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	g := startOne(t, be.Addr(), "", gatewaytest.WithServer("release_idle_after: 100ms"))
	cl := gatewaytest.Client(t)
	get := func() (reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr()+"/x", nil)
		resp, err := cl.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return reused
	}
	released := func() float64 {
		return sampleSum(t, g, "sluice_downstream_connections", `state="released"`)
	}
	get()
	for i := 0; i < 3; i++ {
		for end := time.Now().Add(5 * time.Second); released() != 1; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("round %d: released gauge %v, want 1", i, released())
			}
		}
		if !get() {
			t.Fatalf("round %d: the client did not reuse its released connection", i)
		}
	}
	if n := sampleSum(t, g, "sluice_downstream_connections_accepted_total", ""); n != 1 {
		t.Fatalf("accepted %v connections, want 1", n)
	}
}
