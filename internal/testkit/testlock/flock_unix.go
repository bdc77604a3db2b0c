//go:build unix

package testlock

import (
	"os"
	"path/filepath"
	"syscall"
)

// acquire takes an exclusive flock on a file shared by every test binary.
// The kernel releases it if the process dies.
func acquire() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sluice-realtime-tests.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
