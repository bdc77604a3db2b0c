package ratelimit

import (
	"net/http"
	"sync"
	"time"
)

// Local is an in-memory token bucket per key, for a single gateway: the same
// replenish rate and burst capacity as the Redis limiter, refilled
// continuously. It tracks at most MaxKeys buckets; full buckets are
// forgotten first (a forgotten bucket is a full one, so nothing changes).
type Local struct {
	rate, capacity float64
	now            func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// MaxKeys bounds the buckets a Local keeps.
const MaxKeys = 100_000

// NewLocal returns a local limiter.
func NewLocal(rate, capacity int) *Local {
	return &Local{rate: float64(rate), capacity: float64(capacity), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow implements Limiter; it never fails.
func (l *Local) Allow(_ *http.Request, key string, requested int) (bool, int64, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= MaxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: l.capacity, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.capacity, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= float64(requested) {
		b.tokens -= float64(requested)
		return true, int64(b.tokens), nil
	}
	return false, int64(b.tokens), nil
}

// sweep forgets the buckets that have refilled; if none has, an arbitrary
// tenth of them.
func (l *Local) sweep(now time.Time) {
	for k, b := range l.buckets {
		if l.rate > 0 && b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.capacity {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < MaxKeys*9/10 {
			break
		}
		delete(l.buckets, k)
	}
}
