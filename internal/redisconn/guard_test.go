package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	errConn  = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	errReply = replyError("WRONGTYPE Operation against a key holding the wrong kind of value")
)

func TestKind(t *testing.T) {
	tests := []struct {
		desc string
		err  error
		want string
	}{
		{desc: "nil", err: nil, want: ""},
		{desc: "redis.Nil is an answer", err: redis.Nil, want: ""},
		{desc: "deadline", err: fmt.Errorf("read: %w", context.DeadlineExceeded), want: KindTimeout},
		{desc: "canceled", err: context.Canceled, want: KindCanceled},
		{desc: "pool timeout", err: redis.ErrPoolTimeout, want: KindPoolTimeout},
		{desc: "refused", err: errConn, want: KindConnection},
		{desc: "closed client", err: redis.ErrClosed, want: KindConnection},
		{desc: "error reply", err: errReply, want: KindServer},
		{desc: "loading reply is the server not being there", err: replyError("LOADING Redis is loading the dataset in memory"), want: KindConnection},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := Kind(tc.err); got != tc.want {
				t.Errorf("Kind(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestGuardCircuit(t *testing.T) {
	s := &Stats{}
	g := NewGuard(GuardOptions{Timeout: 50 * time.Millisecond, Failures: 3, OpenFor: 100 * time.Millisecond}, s)
	fail := func(context.Context) error { return errConn }
	ok := func(context.Context) error { return nil }
	calls := 0
	counting := func(f func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error { calls++; return f(ctx) }
	}
	steps := []struct {
		desc      string
		wait      time.Duration
		call      func(context.Context) error
		want      error
		wantCalls int
		wantOpen  bool
	}{
		{desc: "server answers are not failures", call: func(context.Context) error { return errReply }, want: errReply, wantCalls: 1},
		{desc: "redis.Nil is not a failure", call: func(context.Context) error { return redis.Nil }, want: redis.Nil, wantCalls: 1},
		{desc: "failure 1", call: fail, want: errConn, wantCalls: 1},
		{desc: "failure 2", call: fail, want: errConn, wantCalls: 1},
		{desc: "failure 3 opens", call: fail, want: errConn, wantCalls: 1, wantOpen: true},
		{desc: "open: refused without calling", call: ok, want: ErrCircuitOpen, wantCalls: 0, wantOpen: true},
		{desc: "probe fails: open again", wait: 120 * time.Millisecond, call: fail, want: errConn, wantCalls: 1, wantOpen: true},
		{desc: "still open", call: ok, want: ErrCircuitOpen, wantCalls: 0, wantOpen: true},
		{desc: "probe succeeds: closed", wait: 120 * time.Millisecond, call: ok, want: nil, wantCalls: 1},
		{desc: "closed: calls go through", call: ok, want: nil, wantCalls: 1},
	}
	for _, st := range steps {
		time.Sleep(st.wait)
		calls = 0
		err := g.Do(context.Background(), counting(st.call))
		if !errors.Is(err, st.want) && err != st.want {
			t.Errorf("%s: error %v, want %v", st.desc, err, st.want)
		}
		if calls != st.wantCalls {
			t.Errorf("%s: %d calls, want %d", st.desc, calls, st.wantCalls)
		}
		if g.Open() != st.wantOpen {
			t.Errorf("%s: open %v, want %v", st.desc, g.Open(), st.wantOpen)
		}
	}
	if n := s.Errors()[KindCircuitOpen]; n != 2 {
		t.Errorf("circuit_open counted %d times, want 2", n)
	}
}

func TestGuardTimeoutAndConcurrency(t *testing.T) {
	s := &Stats{}
	g := NewGuard(GuardOptions{Timeout: 30 * time.Millisecond, MaxConcurrency: 2}, s)
	start := time.Now()
	err := g.Do(context.Background(), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if d := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || d > 200*time.Millisecond {
		t.Fatalf("slow call: %v after %s, want a deadline error after 30ms", err, d)
	}

	release := make(chan struct{})
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Do(context.Background(), func(ctx context.Context) error { started <- struct{}{}; <-release; return nil })
		}()
	}
	<-started
	<-started
	start = time.Now()
	err = g.Do(context.Background(), func(context.Context) error { t.Error("a third call ran"); return nil })
	if !errors.Is(err, ErrBusy) || time.Since(start) > 10*time.Millisecond {
		t.Errorf("third concurrent call: %v after %s, want ErrBusy at once", err, time.Since(start))
	}
	close(release)
	wg.Wait()
	if s.Errors()[KindBusy] != 1 {
		t.Errorf("busy counted %d times, want 1", s.Errors()[KindBusy])
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	h.Observe(50 * time.Microsecond)
	h.Observe(3 * time.Millisecond)
	h.Observe(2 * time.Second)
	count, sum, b := h.Snapshot()
	if count != 3 || b[.0001] != 1 || b[.005] != 2 || b[1] != 2 {
		t.Errorf("count %d, buckets %v", count, b)
	}
	if sum < 2.003 || sum > 2.0031 {
		t.Errorf("sum %f", sum)
	}
}

// replyError is an error reply from Redis (implements redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}
