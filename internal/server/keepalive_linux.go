package server

import (
	"net"
	"syscall"
	"time"
)

// keepAliveInherited: Linux's tcp_create_openreq_child copies the
// listener's keepalive flag and parameters into each accepted socket.
const keepAliveInherited = true

// setKeepAlive applies ka to a socket as net.TCPConn.SetKeepAliveConfig
// would: a zero Idle or Interval means 15s, a zero Count 9, a negative
// value leaves the system default.
func setKeepAlive(fd int, ka net.KeepAliveConfig) error {
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	secs := func(d time.Duration) int {
		if d == 0 {
			d = 15 * time.Second
		}
		return max(int((d+time.Second-1)/time.Second), 1)
	}
	if ka.Idle >= 0 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs(ka.Idle)); err != nil {
			return err
		}
	}
	if ka.Interval >= 0 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs(ka.Interval)); err != nil {
			return err
		}
	}
	if ka.Count >= 0 {
		n := ka.Count
		if n == 0 {
			n = 9
		}
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, n); err != nil {
			return err
		}
	}
	return nil
}
