package overload

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestNilLimiterAdmitsEverything(t *testing.T) {
	var l *Limiter = New(Options{})
	if l != nil {
		t.Fatal("New without a limit returned a limiter")
	}
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Release(time.Millisecond, true)
	if s := l.Saturation(); s != 0 {
		t.Fatalf("saturation %v", s)
	}
}

func TestFixedLimitAndQueue(t *testing.T) {
	tests := []struct {
		name      string
		queue     int
		timeout   time.Duration
		release   bool // a slot is released while the extra request waits
		wantErr   error
		wantShedL uint64
		wantShedT uint64
	}{
		{name: "no queue sheds at once", wantErr: ErrLimit, wantShedL: 1},
		{name: "queue times out", queue: 1, timeout: 50 * time.Millisecond, wantErr: ErrQueueTimeout, wantShedT: 1},
		{name: "queue gets a released slot", queue: 1, timeout: 5 * time.Second, release: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Options{Limit: 2, QueueSize: tc.queue, QueueTimeout: tc.timeout})
			ctx := context.Background()
			for range 2 {
				if err := l.Acquire(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := l.Saturation(); got != 1 {
				t.Fatalf("saturation %v, want 1", got)
			}
			if tc.release {
				go func() {
					for l.Stats().Queued == 0 {
						time.Sleep(time.Millisecond)
					}
					l.Release(time.Millisecond, true)
				}()
			}
			start := time.Now()
			err := l.Acquire(ctx)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if tc.timeout > 0 && tc.wantErr == ErrQueueTimeout && time.Since(start) < tc.timeout {
				t.Fatalf("gave up after %v, before the %v timeout", time.Since(start), tc.timeout)
			}
			s := l.Stats()
			if s.ShedLimit != tc.wantShedL || s.ShedTimeout != tc.wantShedT {
				t.Fatalf("stats %+v", s)
			}
			if tc.queue > 0 && s.Waits != 1 {
				t.Fatalf("waits %d, want 1", s.Waits)
			}
			if s.Queued != 0 {
				t.Fatalf("%d left in the queue", s.Queued)
			}
		})
	}
}

func TestQueueIsFIFOAndBounded(t *testing.T) {
	l := New(Options{Limit: 1, QueueSize: 3, QueueTimeout: 5 * time.Second})
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			l.Release(time.Millisecond, true)
		}()
		for l.Stats().Queued != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := l.Acquire(ctx); err != ErrLimit {
		t.Fatalf("a fourth waiter: got %v, want ErrLimit", err)
	}
	l.Release(time.Millisecond, true)
	wg.Wait()
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("order %v, want [0 1 2]", order)
	}
}

func TestCanceledWaiterLeavesQueue(t *testing.T) {
	l := New(Options{Limit: 1, QueueSize: 1, QueueTimeout: 5 * time.Second})
	l.Acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	l.Release(time.Millisecond, true)
	if s := l.Stats(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// sim drives an adaptive limiter with a fake clock in ticks of 5ms: each
// tick, requests that have run for their latency (±25%) finish, and new ones start
// while the limit allows, up to load in flight; a load above the limit also
// tries one more request, which must be shed.
type sim struct {
	t       *testing.T
	now     time.Time
	l       *Limiter
	started []time.Time // when each request in flight ends
	seq     int
}

func newSim(t *testing.T, a Adaptive) *sim {
	s := &sim{t: t, now: time.Unix(1000, 0)}
	s.l = New(Options{Adaptive: &a, Now: func() time.Time { return s.now }})
	return s
}

// run runs for d with load requests wanting to be in flight, each taking
// lat, and returns the lowest limit seen.
func (s *sim) run(d time.Duration, load int, lat time.Duration) int {
	const tick = 5 * time.Millisecond
	lowest := s.l.Limit()
	for end := s.now.Add(d); s.now.Before(end); s.now = s.now.Add(tick) {
		kept := s.started[:0]
		for _, st := range s.started {
			if !s.now.Before(st) {
				s.l.Release(lat, true)
			} else {
				kept = append(kept, st)
			}
		}
		s.started = kept
		for len(s.started) < load {
			err := s.l.Acquire(context.Background())
			if err == ErrLimit {
				break
			}
			if err != nil {
				s.t.Fatal(err)
			}
			// Latencies spread over lat ± 25% (golden-ratio sequence), so
			// requests do not finish in lockstep batches.
			s.seq++
			frac := float64(s.seq) * 0.6180339887
			frac -= float64(int(frac))
			s.started = append(s.started, s.now.Add(time.Duration(float64(lat)*(0.75+0.5*frac))))
		}
		lowest = min(lowest, s.l.Limit())
	}
	return lowest
}

func TestAdaptiveLimit(t *testing.T) {
	opt := Adaptive{MinLimit: 5, MaxLimit: 500, InitialLimit: 20, Tolerance: 2, Window: 100 * time.Millisecond, BaselineHalfLife: 10 * time.Second}
	tests := []struct {
		name string
		run  func(s *sim) string // "" = pass
	}{
		{name: "grows under saturating load at steady latency", run: func(s *sim) string {
			s.run(5*time.Second, 1000, 20*time.Millisecond)
			if got := s.l.Limit(); got < 450 {
				return "limit " + itoa(got) + " after 5s of saturating load, want near the 500 ceiling"
			}
			return ""
		}},
		{name: "does not grow when the load does not use it", run: func(s *sim) string {
			s.run(3*time.Second, 4, 20*time.Millisecond)
			if got := s.l.Limit(); got != 20 {
				return "limit " + itoa(got) + ", want the initial 20"
			}
			return ""
		}},
		{name: "shrinks to the floor when latency jumps, recovers when it returns", run: func(s *sim) string {
			s.run(5*time.Second, 1000, 20*time.Millisecond)
			before := s.l.Limit()
			low := s.run(6*time.Second, 1000, 2*time.Second)
			if low > 10 {
				return "lowest limit " + itoa(low) + " during 2s latency, want near the floor 5"
			}
			s.run(5*time.Second, 1000, 20*time.Millisecond)
			if got := s.l.Limit(); got < before*9/10 {
				return "limit " + itoa(got) + " 5s after latency recovered, want back near " + itoa(before)
			}
			return ""
		}},
		{name: "a higher latency that stays becomes the baseline: off the floor", run: func(s *sim) string {
			s.run(2*time.Second, 1000, 20*time.Millisecond)
			if low := s.run(3*time.Second, 1000, 200*time.Millisecond); low > 10 {
				return "lowest limit " + itoa(low) + ", want near the floor"
			}
			s.run(60*time.Second, 1000, 200*time.Millisecond)
			if got := s.l.Limit(); got < 100 {
				return "limit " + itoa(got) + " after 60s at a steady 200ms: stuck near the floor"
			}
			return ""
		}},
		{name: "periodic spikes do not ratchet it down", run: func(s *sim) string {
			s.run(3*time.Second, 1000, 20*time.Millisecond)
			for range 5 {
				s.run(300*time.Millisecond, 1000, 300*time.Millisecond)
				s.run(2*time.Second, 1000, 20*time.Millisecond)
			}
			if got := s.l.Limit(); got < 300 {
				return "limit " + itoa(got) + " after spikes and recoveries"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if msg := tc.run(newSim(t, opt)); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Options{Adaptive: &Adaptive{MinLimit: 5, MaxLimit: 1000, InitialLimit: 1000}})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.Acquire(ctx) == nil {
				l.Release(time.Millisecond, true)
			}
		}
	})
}
