package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// wasReset reports whether c has received an RST (Linux TCP_CLOSE state).
func wasReset(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var state uint8
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	})
	return state == 7 // TCP_CLOSE
}
