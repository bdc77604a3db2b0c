package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is where the drain protocol is.
type Phase int32

const (
	Serving   Phase = iota // normal operation
	NotReady               // readiness fails; still serving normally (drain.delay)
	Closing                // every response asks the client to close; idle connections are closed after a grace
	Finishing              // listener closed; in-flight requests finish (drain.timeout)
	Done
)

var phaseNames = [...]string{"serving", "not_ready", "closing", "finishing", "done"}

func (p Phase) String() string { return phaseNames[p] }

// Drainer runs the drain protocol over a gateway's listeners.
type Drainer struct {
	Delay   time.Duration // how long to keep serving after readiness fails
	Timeout time.Duration // how long in-flight requests may take to finish
	// IdleGrace is how long an idle keep-alive connection is left, once
	// clients are being asked to close, before the gateway closes it.
	IdleGrace  time.Duration
	Servers    []*Server
	SetReady   func(bool)
	SetClosing func(bool)
	// GoAway, when set, ends upgraded connections (WebSockets: close frame
	// 1001) by ctx's end and returns how many it had to cut.
	GoAway func(ctx context.Context) int
	Log    *slog.Logger

	phase atomic.Int32
}

// Phase returns the current phase.
func (d *Drainer) Phase() Phase { return Phase(d.phase.Load()) }

func (d *Drainer) enter(p Phase) {
	d.phase.Store(int32(p))
	d.Log.Info("drain", "phase", p.String())
}

// Run drains and returns a one-line summary. Cancelling force (a second
// signal) skips the remaining waits and closes everything at once.
func (d *Drainer) Run(force context.Context) string {
	start := time.Now()
	var accepted0 uint64
	for _, s := range d.Servers {
		accepted0 += s.Accepted.Load()
	}
	d.enter(NotReady)
	d.SetReady(false)
	wait(force, d.Delay)

	d.enter(Closing)
	d.SetClosing(true)
	mark := time.Now()
	grace := d.IdleGrace
	if grace <= 0 {
		grace = time.Second
	}
	closedIdle := 0
	for end := mark.Add(grace + 100*time.Millisecond); time.Now().Before(end) && force.Err() == nil; {
		for _, s := range d.Servers {
			closedIdle += s.CloseIdleSince(mark, grace)
		}
		wait(force, 50*time.Millisecond)
	}

	d.enter(Finishing)
	ctx, cancel := context.WithTimeout(force, d.Timeout)
	defer cancel()
	cut := 0
	upgradesCut := make(chan int, 1)
	go func() {
		n := 0
		if d.GoAway != nil {
			n = d.GoAway(ctx)
		}
		upgradesCut <- n
	}()
	// Every listener stops accepting now, not after the previous one's
	// requests have finished.
	var shutdowns sync.WaitGroup
	var cutOpen atomic.Int64
	for _, s := range d.Servers {
		shutdowns.Go(func() {
			open, _ := s.Counts()
			if err := s.Shutdown(ctx); err != nil {
				cutOpen.Add(int64(open))
			}
		})
	}
	shutdowns.Wait()
	cut += int(cutOpen.Load())
	cut += <-upgradesCut
	d.enter(Done)
	var accepted, closed uint64
	for _, s := range d.Servers {
		accepted += s.Accepted.Load()
		closed += s.Closed.Load()
	}
	return fmt.Sprintf("drained in %s: %d connections accepted during drain, %d closed in all, %d idle closed after grace, %d cut at the deadline",
		time.Since(start).Round(time.Millisecond), accepted-accepted0, closed, closedIdle, cut)
}

func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
