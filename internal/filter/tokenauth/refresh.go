package tokenauth

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/redisconn"
)

// refresher extends the TTL of tokens off the request path. Keys wait in a
// bounded queue (a full queue drops the key: it will be queued again on its
// next use), each key at most once at a time. One worker goroutine runs
// while the queue is not empty and exits when it is, so a filter replaced by
// a reload leaves nothing running; it sends up to batchSize PEXPIREs per
// round trip.
type refresher struct {
	client  *redisconn.Client
	guard   *redisconn.Guard
	ttl     time.Duration
	queue   chan string
	pending sync.Map // key → struct{}: queued or being extended
	running atomic.Bool
	log     *slog.Logger
}

const batchSize = 64

func newRefresher(c *redisconn.Client, g *redisconn.Guard, ttl time.Duration, size int, log *slog.Logger) *refresher {
	return &refresher{client: c, guard: g, ttl: ttl, queue: make(chan string, size), log: log}
}

// enqueue asks for key's TTL to be extended; it never blocks.
func (r *refresher) enqueue(key string) {
	if _, dup := r.pending.LoadOrStore(key, struct{}{}); dup {
		return
	}
	select {
	case r.queue <- key:
	default:
		r.pending.Delete(key)
		return
	}
	if r.running.CompareAndSwap(false, true) {
		go r.run()
	}
}

func (r *refresher) run() {
	batch := make([]string, 0, batchSize)
	for {
		batch = batch[:0]
	fill:
		for len(batch) < batchSize {
			select {
			case k := <-r.queue:
				batch = append(batch, k)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			r.extend(batch)
			continue
		}
		r.running.Store(false)
		// An enqueue may have seen running == true just before: look again.
		if len(r.queue) == 0 || !r.running.CompareAndSwap(false, true) {
			return
		}
	}
}

func (r *refresher) extend(keys []string) {
	defer func() {
		for _, k := range keys {
			r.pending.Delete(k)
		}
	}()
	if r.guard.Open() {
		return // Redis is down; the keys come back on their next use
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pipe := r.client.Pipeline()
	for _, k := range keys {
		// XX-free PEXPIRE: a key deleted meanwhile (a logout) stays deleted.
		pipe.PExpire(ctx, k, r.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.log.Debug("extending token TTLs failed", "keys", len(keys), "error", err)
	}
}
