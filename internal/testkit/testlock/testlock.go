// Package testlock serialises the tests that judge real time under load —
// the chaos scenarios, latency bounds, rate-limit accuracy, reloads under
// load — across the test binaries that `go test ./...` runs in parallel, so
// that two of them never compete for the same cores and fail each other.
// Unit tests do not take it.
package testlock

import "testing"

// Realtime blocks until no other real-time test on this machine runs, and
// holds the lock until t ends.
func Realtime(t testing.TB) {
	t.Helper()
	release, err := acquire()
	if err != nil {
		t.Logf("testlock: running without the real-time lock: %v", err)
		return
	}
	t.Cleanup(release)
}
