package pool

import "golang.org/x/sys/unix"

// tcpClose is Linux's TCP_CLOSE state (include/net/tcp_states.h).
const tcpClose = 7

// resetSeen reports whether the connection has received an RST: after a FIN
// the socket sits in CLOSE_WAIT; an RST moves it to CLOSE.
func (p *prober) resetSeen() bool {
	if p == nil || p.rc == nil {
		return false
	}
	var state uint8
	err := p.rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	})
	return err == nil && state == tcpClose
}
