//go:build linux

package server

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// Accepted sockets get the configured keepalive, from the listener alone,
// and none when it is disabled.
func TestListenKeepAlive(t *testing.T) {
	tests := []struct {
		name                   string
		ka                     net.KeepAliveConfig
		on, idle, intvl, count int
	}{
		{name: "configured", ka: net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 5}, on: 1, idle: 7, intvl: 3, count: 5},
		{name: "zero values take Go's defaults", ka: net.KeepAliveConfig{Enable: true}, on: 1, idle: 15, intvl: 15, count: 9},
		{name: "disabled", ka: net.KeepAliveConfig{Enable: false, Idle: -1}, on: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lc := listenConfig(Options{KeepAlive: tc.ka, ReusePort: true})
			ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ac, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer ac.Close()
			rc, err := ac.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var on, idle, intvl, count int
			rc.Control(func(fd uintptr) {
				on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
				idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
				intvl, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
				count, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
			})
			if on != tc.on {
				t.Fatalf("SO_KEEPALIVE = %d, want %d", on, tc.on)
			}
			if tc.on == 1 && (idle != tc.idle || intvl != tc.intvl || count != tc.count) {
				t.Errorf("keepalive = %ds/%ds/%d, want %ds/%ds/%d", idle, intvl, count, tc.idle, tc.intvl, tc.count)
			}
		})
	}
}
