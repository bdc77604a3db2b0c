package cluster

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/pool"
)

func TestDecisionTable(t *testing.T) {
	reset := syscall.ECONNRESET
	timeout := timeoutErr{}
	type tc struct {
		name       string
		method     string
		key        keyCase
		err        pool.Error
		replayable bool
		optIn      bool
		want       Decision
	}
	tests := []tc{
		// Nothing was sent: any method, any body, at once.
		{"POST refused", "POST", noKey, pool.Error{Stage: pool.StageDial, Err: syscall.ECONNREFUSED}, false, false, RetryNow},
		{"POST pool wait", "POST", noKey, pool.Error{Stage: pool.StageWait, Err: timeout}, false, false, RetryNow},
		{"GET refused", "GET", noKey, pool.Error{Stage: pool.StageDial, Err: syscall.ECONNREFUSED}, true, false, RetryNow},
		{"POST write failed, 0 bytes out, buffered body", "POST", noKey, pool.Error{Stage: pool.StageWrite, Written: 0, Peer: true, Err: reset}, true, false, RetryNow},
		{"POST write failed, 0 bytes out, streamed body", "POST", noKey, pool.Error{Stage: pool.StageWrite, Written: 0, Peer: true, Err: reset}, false, false, NoRetry},
		// Sent, no response.
		{"GET reset on reused conn", "GET", noKey, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, false, RetryNow},
		{"PUT reset on reused conn", "PUT", noKey, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, false, RetryNow},
		{"DELETE reset on fresh conn", "DELETE", noKey, pool.Error{Stage: pool.StageAwait, Peer: true, Err: reset}, true, false, RetryBackoff},
		{"POST reset on reused conn", "POST", noKey, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, false, NoRetry},
		{"POST reset on reused conn, Idempotency-Key, no opt-in", "POST", keySent, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, false, NoRetry},
		{"POST reset on reused conn, Idempotency-Key, route honours it", "POST", keyHonoured, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, false, RetryNow},
		{"POST reset, route opts in", "POST", noKey, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, true, true, RetryNow},
		{"PATCH partial write", "PATCH", noKey, pool.Error{Stage: pool.StageWrite, Written: 100, Peer: true, Err: reset}, true, false, NoRetry},
		{"GET per-try timeout", "GET", noKey, pool.Error{Stage: pool.StageAwait, Err: timeout}, true, false, RetryBackoff},
		{"POST per-try timeout", "POST", noKey, pool.Error{Stage: pool.StageAwait, Err: timeout}, true, false, NoRetry},
		{"GET large streamed body reset", "GET", noKey, pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: reset}, false, false, NoRetry},
		// A response had begun.
		{"GET garbled headers", "GET", noKey, pool.Error{Stage: pool.StageHeaders, Peer: true, Err: reset}, true, false, RetryBackoff},
		{"POST garbled headers", "POST", noKey, pool.Error{Stage: pool.StageHeaders, Peer: true, Err: reset}, true, false, NoRetry},
		{"GET body cut", "GET", noKey, pool.Error{Stage: pool.StageBody, Peer: true, Err: reset}, true, false, NoRetry},
		// The client's fault.
		{"client body", "POST", noKey, pool.Error{Stage: pool.StageClientBody, Err: reset}, true, true, NoRetry},
		// HTTP/2 GOAWAY above last-stream-id: reported as nothing written.
		{"POST h2 GOAWAY", "POST", noKey, pool.Error{Stage: pool.StageWrite, Written: 0, Reused: true, Err: reset}, true, false, RetryNow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(tc.method, "http://x/", nil)
			p := DefaultPolicy
			if tc.key != noKey {
				r.Header.Set("Idempotency-Key", "k1")
				p.IdempotencyKey = tc.key == keyHonoured
			}
			p.RetryNonIdempotent = tc.optIn
			e := tc.err
			if got := decide(&e, idempotent(r, &p), tc.replayable, &p); got != tc.want {
				t.Fatalf("decide = %v, want %v", got, tc.want)
			}
		})
	}
}

// keyCase is whether a request carries an Idempotency-Key and whether its
// route honours it (retry.idempotency_key).
type keyCase uint8

const (
	noKey keyCase = iota
	keySent
	keyHonoured
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestBackoff(t *testing.T) {
	p := &Policy{BackoffBase: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond}
	for n := 1; n <= 8; n++ {
		ceiling := min(p.BackoffBase<<(n-1), p.BackoffMax)
		for i := 0; i < 100; i++ {
			if d := backoff(p, n); d <= 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want (0, %v]", n, d, ceiling)
			}
		}
	}
	if d := backoff(&Policy{}, 3); d != 0 {
		t.Fatalf("no base: backoff = %v, want 0", d)
	}
}

func TestBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBudget(20, 3)
	for i := 0; i < 10; i++ {
		b.request(now)
	}
	for i := 0; i < 3; i++ {
		if !b.try(now) {
			t.Fatalf("retry %d refused under the floor of 3 in flight", i)
		}
	}
	if b.try(now) {
		t.Fatal("4th retry in flight allowed with 3 retries already past 20% of 10 requests")
	}
	for i := 0; i < 100; i++ { // 110 requests: 22 retries
		b.request(now.Add(time.Duration(i) * 50 * time.Millisecond))
	}
	later := now.Add(5 * time.Second)
	for i := 3; i < 22; i++ {
		if !b.try(later) {
			t.Fatalf("retry %d refused within 20%% of 110 requests", i)
		}
	}
	if b.try(later) {
		t.Fatal("23rd retry allowed")
	}
	if b.Exhausted() != 2 {
		t.Fatalf("exhausted = %d, want 2", b.Exhausted())
	}
	for i := 0; i < 22; i++ {
		b.done()
	}
	if !b.try(later) {
		t.Fatal("with nothing in flight, the floor allows a retry")
	}
	b.done()
	// Ten seconds on, the window has forgotten both requests and retries.
	gone := now.Add(16 * time.Second)
	for i := 0; i < 3; i++ {
		b.try(gone)
	}
	if b.try(gone) {
		t.Fatal("a retry past the floor allowed with no request in the window")
	}
	if NewBudget(0, 0).try(now) {
		t.Fatal("a budget of 0% and no floor allowed a retry")
	}
}

func (d Decision) String() string {
	return [...]string{"NoRetry", "RetryNow", "RetryBackoff"}[d]
}

// next is the whole retry policy as a pure function of what a try left.
func TestNextStep(t *testing.T) {
	p := DefaultPolicy
	p.Statuses = []int{503}
	reset := &pool.Error{Stage: pool.StageAwait, Reused: true, Peer: true, Err: syscall.ECONNRESET}
	ok := outcome{idempotent: true, replayable: true, methodAllowed: true}
	with := func(f func(o *outcome)) outcome { o := ok; f(&o); return o }
	tests := []struct {
		name string
		o    outcome
		want Decision
	}{
		{"200 is answered", with(func(o *outcome) { o.status = 200 }), NoRetry},
		{"503 retried after a backoff", with(func(o *outcome) { o.status = 503 }), RetryBackoff},
		{"503 of a POST is answered", with(func(o *outcome) { o.status = 503; o.idempotent = false }), NoRetry},
		{"503 on the last try is answered", with(func(o *outcome) { o.status = 503; o.lastTry = true }), NoRetry},
		{"503 after the deadline is answered", with(func(o *outcome) { o.status = 503; o.timeUp = true }), NoRetry},
		{"503 of a method Retry does not list", with(func(o *outcome) { o.status = 503; o.methodAllowed = false }), NoRetry},
		{"503 with a streamed body", with(func(o *outcome) { o.status = 503; o.replayable = false }), NoRetry},
		{"reset of a reused connection", with(func(o *outcome) { o.err = reset }), RetryNow},
		{"reset, client gone", with(func(o *outcome) { o.err = reset; o.clientGone = true }), NoRetry},
		{"reset, method Retry does not list", with(func(o *outcome) { o.err = reset; o.methodAllowed = false }), NoRetry},
		{"refused, method Retry does not list", with(func(o *outcome) {
			o.err = &pool.Error{Stage: pool.StageDial, Err: syscall.ECONNREFUSED}
			o.methodAllowed = false
		}), RetryNow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := next(tc.o, &p); got != tc.want {
				t.Fatalf("next = %v, want %v", got, tc.want)
			}
		})
	}
}
