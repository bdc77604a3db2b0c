//go:build unix

package server

import (
	"io"
	"net"
	"syscall"
)

const releaseSupported = true

// waitReadable blocks, in the runtime's network poller and without a read
// buffer, until c has bytes to read (nil), or fails: the client closed or
// reset it, the read deadline passed, or c was closed.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errReleased
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var peekErr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
			return false // not readable yet: wait in the poller
		case err != nil:
			peekErr = err
		case n == 0:
			peekErr = io.EOF
		}
		return true
	})
	if err != nil {
		return err
	}
	return peekErr
}
