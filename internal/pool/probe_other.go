//go:build !unix

package pool

import "syscall"

// prober is a no-op where a non-blocking peek is not available; the retry
// rules still cover a connection found closed on use.
type prober struct{}

func newProber(syscall.RawConn) *prober { return nil }

func (p *prober) probe() bool { return true }
