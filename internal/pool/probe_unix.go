//go:build unix

package pool

import "syscall"

// probe reports whether an idle connection is still usable, without
// blocking: a peek that finds nothing to read (EAGAIN) means the peer has
// neither closed nor reset it and has sent nothing unexpected. A FIN reads as
// 0 bytes, an RST as ECONNRESET, and stray bytes on an idle HTTP/1.1
// connection are a protocol error: all three retire the connection.
//
// The callback is allocated once per connection (see newProber), so a probe
// costs one recvfrom(2) and no allocation.
type prober struct {
	rc    syscall.RawConn
	alive bool
	buf   [1]byte
	fn    func(fd uintptr) bool
}

func newProber(rc syscall.RawConn) *prober {
	p := &prober{rc: rc}
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	}
	return p
}

func (p *prober) probe() bool {
	if p == nil || p.rc == nil {
		return true
	}
	p.alive = false
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.alive
}
