package server

import (
	"net"
	"syscall"
)

// listenConfig returns the ListenConfig for opt: SO_REUSEPORT and TCP
// keepalive. Where accepted sockets inherit keepalive from the listening
// socket (Linux copies SO_KEEPALIVE and TCP_KEEPIDLE/INTVL/CNT into every
// child socket), it is set once on the listener, which spares four
// setsockopt calls per accepted connection; elsewhere Go sets it on each.
// A disabled keepalive stays disabled: Go would otherwise apply its own
// default (15s) to accepted sockets.
func listenConfig(opt Options) net.ListenConfig {
	lc := net.ListenConfig{KeepAlive: -1}
	var sets []func(fd int) error
	if opt.ReusePort {
		sets = append(sets, func(fd int) error { return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1) })
	}
	if ka := opt.KeepAlive; ka.Enable {
		if keepAliveInherited {
			sets = append(sets, func(fd int) error { return setKeepAlive(fd, ka) })
		} else {
			lc.KeepAliveConfig = ka
		}
	}
	if len(sets) > 0 {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				for _, set := range sets {
					if serr = set(int(fd)); serr != nil {
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return lc
}
