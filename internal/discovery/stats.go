package discovery

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts how a source's registry answers, for the sluice_discovery_*
// metrics, and logs each outage once: when the registry stops answering
// (the last endpoints stay in force) and when it is back. The zero value
// is ready to use; a nil *Stats counts nothing and logs every failure.
type Stats struct {
	Upstream string
	Registry string // nacos, eureka, consul, kubernetes, dns, file

	fetches, failures atomic.Uint64
	down              atomic.Bool
	lastSuccess       atomic.Int64 // unix nanos
	ready, draining   atomic.Int64 // in the last set published

	mu     sync.Mutex
	outage time.Time // when the current outage began
}

// StatsSnapshot is what Stats counted so far.
type StatsSnapshot struct {
	Upstream, Registry string
	Fetches, Failures  uint64
	Up                 bool
	LastSuccess        time.Time // zero before the first success
	Ready, Draining    int64
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	var last time.Time
	if n := s.lastSuccess.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	return StatsSnapshot{Upstream: s.Upstream, Registry: s.Registry, Fetches: s.fetches.Load(), Failures: s.failures.Load(),
		Up: !s.down.Load() && last != time.Time{}, LastSuccess: last, Ready: s.ready.Load(), Draining: s.draining.Load()}
}

// ok records an answer from the registry, logging the end of an outage.
func (s *Stats) ok(log *slog.Logger) {
	if s == nil {
		return
	}
	s.fetches.Add(1)
	s.lastSuccess.Store(time.Now().UnixNano())
	if s.down.Swap(false) {
		s.mu.Lock()
		began := s.outage
		s.mu.Unlock()
		log.Info("discovery registry answers again", "registry", s.Registry, "outage", time.Since(began).Round(time.Millisecond).String())
	}
}

// fail records a failed fetch. Only the first failure of an outage is
// logged as a warning; the others at debug level.
func (s *Stats) fail(log *slog.Logger, err error) {
	if s == nil {
		log.Warn("discovery failed; keeping the last endpoints", "error", err.Error())
		return
	}
	s.fetches.Add(1)
	s.failures.Add(1)
	if s.down.Swap(true) {
		log.Debug("discovery still failing; keeping the last endpoints", "registry", s.Registry, "error", err.Error())
		return
	}
	s.mu.Lock()
	s.outage = time.Now()
	s.mu.Unlock()
	log.Warn("discovery registry unreachable; keeping the last endpoints", "registry", s.Registry, "error", err.Error())
}

// published records the set last published.
func (s *Stats) published(ready, draining int) {
	if s == nil {
		return
	}
	s.ready.Store(int64(ready))
	s.draining.Store(int64(draining))
}

// okQuiet and failQuiet count for sources that log on their own.
func (s *Stats) okQuiet() {
	if s != nil {
		s.fetches.Add(1)
		s.lastSuccess.Store(time.Now().UnixNano())
		s.down.Store(false)
	}
}

func (s *Stats) failQuiet(error) {
	if s != nil {
		s.fetches.Add(1)
		s.failures.Add(1)
		s.down.Store(true)
	}
}
