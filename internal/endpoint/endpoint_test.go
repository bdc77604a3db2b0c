package endpoint

import (
	"testing"
	"time"
)

func TestEjectionGrowsAndExpires(t *testing.T) {
	e := New(Spec{Addr: "10.0.0.1:80"}, nil, time.Unix(0, 0))
	now := time.Unix(1000, 0)
	base := 30 * time.Second
	for n := 1; n <= 12; n++ {
		until := e.Eject(now, base)
		want := base * time.Duration(min(n, 10))
		if got := until.Sub(now); got != want {
			t.Fatalf("ejection %d lasts %v, want %v", n, got, want)
		}
		if !e.Ejected(now.Add(want - time.Nanosecond).UnixNano()) {
			t.Fatalf("ejection %d over too early", n)
		}
		if e.Ejected(until.UnixNano()) {
			t.Fatalf("ejection %d not over at its end", n)
		}
	}
	if e.EjectionsTotal.Load() != 12 {
		t.Fatalf("ejections = %d", e.EjectionsTotal.Load())
	}
}

func TestFailuresRun(t *testing.T) {
	e := New(Spec{Addr: "a:1"}, nil, time.Now())
	e.Failed()
	e.Failed()
	if n := e.Failed(); n != 3 {
		t.Fatalf("run = %d, want 3", n)
	}
	e.Succeeded()
	if n := e.Failed(); n != 1 {
		t.Fatalf("run after a success = %d, want 1", n)
	}
}

func TestSlowStart(t *testing.T) {
	t0 := time.Unix(100, 0)
	e := New(Spec{Addr: "a:1"}, nil, t0)
	w := 10 * time.Second
	tests := []struct {
		at   time.Duration
		want float64
	}{{0, 0.1}, {5 * time.Second, 0.55}, {10 * time.Second, 1}, {time.Minute, 1}}
	for _, tc := range tests {
		if got := e.SlowStartFactor(t0.Add(tc.at), w); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Fatalf("factor at %v = %v, want %v", tc.at, got, tc.want)
		}
	}
	if e.SlowStartFactor(t0, 0) != 1 {
		t.Fatal("no window: full share at once")
	}
}

// The ejection multiplier decays: each base period an endpoint spends back
// in rotation without being ejected takes one step off, so an endpoint
// ejected often long ago starts again from one base period.
func TestEjectionMultiplierDecays(t *testing.T) {
	e := New(Spec{Addr: "10.0.0.1:80"}, nil, time.Unix(0, 0))
	base := 10 * time.Second
	now := time.Unix(1000, 0)
	var until time.Time
	for n := 1; n <= 4; n++ {
		until = e.Eject(now, base)
		if got := until.Sub(now); got != time.Duration(n)*base {
			t.Fatalf("ejection %d, each as the last ended, lasts %v, want %v", n, got, time.Duration(n)*base)
		}
		now = until
	}
	// Two base periods in rotation: two steps off (4 → 2), then this one.
	now = until.Add(2 * base)
	if got := e.Eject(now, base).Sub(now); got != 3*base {
		t.Fatalf("after 2 periods in rotation the ejection lasts %v, want %v", got, 3*base)
	}
	// Long in rotation: back to one period.
	now = now.Add(3*base + time.Hour)
	if got := e.Eject(now, base).Sub(now); got != base {
		t.Fatalf("after an hour in rotation the ejection lasts %v, want %v", got, base)
	}
}
