//go:build !linux

package pool

// resetSeen is not available here; without it no request is proven unread.
func (p *prober) resetSeen() bool { return false }
