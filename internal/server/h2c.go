package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// h2cUpgrader serves HTTP/2 on plain connections that ask for it with
// "Upgrade: h2c" (RFC 7540 §3.2; prior knowledge is net/http's own). The
// upgraded connection leaves net/http's server (it is hijacked), so the
// upgrader tracks it itself: Shutdown sends it a graceful GOAWAY and waits
// for its streams, like net/http does for the others.
type h2cUpgrader struct {
	next    http.Handler
	upgrade http.Handler
	// shell exists for its Shutdown: http2.ConfigureServer made it the
	// owner of h2's connections, and its Shutdown sends every one a GOAWAY.
	shell  *http.Server
	mu     sync.Mutex
	active int
	idle   *sync.Cond
	closed bool
}

// maxUpgradeBody bounds the body of an upgrade request: h2c reads it whole
// into memory (it becomes stream 1). A larger one is served as HTTP/1.1,
// which RFC 9110 allows (a server may ignore Upgrade).
const maxUpgradeBody = 64 << 10

func newH2CUpgrader(next http.Handler) (*h2cUpgrader, error) {
	h2s := &http2.Server{}
	// The upgrade request becomes stream 1 with its HTTP/1.1 form; what
	// asked for the upgrade is for this hop alone and must not be passed on
	// (the proxy would forward it as an upgrade of its own).
	// It is served over HTTP/2 from here on, and says so: what handlers add
	// for HTTP/1.1 alone (Keep-Alive) is a protocol error in HTTP/2.
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			dropUpgradeHeaders(r.Header)
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		}
		next.ServeHTTP(w, r)
	})
	u := &h2cUpgrader{next: next, upgrade: h2c.NewHandler(stream, h2s), shell: &http.Server{}}
	u.idle = sync.NewCond(&u.mu)
	if err := http2.ConfigureServer(u.shell, h2s); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *h2cUpgrader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || !isH2CUpgrade(r.Header) ||
		r.ContentLength < 0 || r.ContentLength > maxUpgradeBody || !u.enter() {
		u.next.ServeHTTP(w, r)
		return
	}
	defer u.leave()
	u.upgrade.ServeHTTP(w, r) // returns when the HTTP/2 connection ends
}

// isH2CUpgrade: the request asks for h2c as RFC 7540 §3.2 spells it.
func isH2CUpgrade(h http.Header) bool {
	return httpguts.HeaderValuesContainsToken(h["Upgrade"], "h2c") &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "HTTP2-Settings") && len(h["Http2-Settings"]) == 1
}

// dropUpgradeHeaders removes the upgrade to h2c from an upgraded request:
// Upgrade, HTTP2-Settings, and their tokens in Connection. Other Connection
// tokens stay, so that the headers they name are still removed downstream.
func dropUpgradeHeaders(h http.Header) {
	h.Del("Upgrade")
	h.Del("Http2-Settings")
	var keep []string
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "Upgrade") && !strings.EqualFold(tok, "HTTP2-Settings") {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		h.Del("Connection")
	} else {
		h["Connection"] = []string{strings.Join(keep, ", ")}
	}
}

func (u *h2cUpgrader) enter() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.active++
	return true
}

func (u *h2cUpgrader) leave() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.active--
	if u.active == 0 {
		u.idle.Broadcast()
	}
}

// Shutdown sends a graceful GOAWAY to every upgraded connection and waits
// until they have ended or ctx is done; it returns how many were left.
func (u *h2cUpgrader) Shutdown(ctx context.Context) int {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	u.shell.Shutdown(sctx) // no listener, no connection of its own: runs the GOAWAY hooks
	cancel()
	stop := context.AfterFunc(ctx, func() {
		u.mu.Lock()
		u.idle.Broadcast()
		u.mu.Unlock()
	})
	defer stop()
	u.mu.Lock()
	defer u.mu.Unlock()
	for u.active > 0 && ctx.Err() == nil {
		u.idle.Wait()
	}
	return u.active
}
