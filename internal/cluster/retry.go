package cluster

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/pool"
)

// Policy is a route's retry and timeout policy.
type Policy struct {
	// Attempts is the number of tries including the first (1 = no retry).
	Attempts int
	// ResponseTimeout bounds the wait for response headers over all tries. 0 = none.
	ResponseTimeout time.Duration
	// PerTryTimeout bounds the wait for response headers of one try. 0 = none.
	PerTryTimeout time.Duration
	BackoffBase   time.Duration
	BackoffMax    time.Duration
	// Statuses are response codes retried for idempotent requests.
	Statuses []int
	// RetryNonIdempotent lets requests of any method be replayed after a
	// reset before any response (the route says its backend tolerates it).
	RetryNonIdempotent bool
	// IdempotencyKey makes a request that carries an Idempotency-Key header
	// idempotent whatever its method: the route's backend deduplicates by
	// it. Off by default, since any client can send the header.
	IdempotencyKey bool
	// BufferLimit is the largest request body kept for replay. Default 64 KiB.
	BufferLimit int64
	// Budget limits the share of retries among the requests in flight; nil
	// uses the cluster's.
	Budget *Budget
	// Methods, when set, narrows retries to these methods (Spring's Retry
	// filter): other requests are retried only when they provably never
	// reached the backend. It never widens what the decision table allows.
	Methods []string
}

// methodAllowed reports whether p lets requests of method be retried after
// they may have reached the backend.
func (p *Policy) methodAllowed(method string) bool {
	return len(p.Methods) == 0 || slices.Contains(p.Methods, method)
}

// DefaultPolicy is what a route gets without a retry block.
var DefaultPolicy = Policy{
	Attempts:        3,
	ResponseTimeout: 30 * time.Second,
	BackoffBase:     25 * time.Millisecond,
	BackoffMax:      250 * time.Millisecond,
	BufferLimit:     64 << 10,
}

func (p *Policy) bufferLimit() int64 {
	if p.BufferLimit > 0 {
		return p.BufferLimit
	}
	return DefaultPolicy.BufferLimit
}

// idempotent reports whether r may be sent twice without changing the
// outcome: by method (RFC 9110 §9.2.2), or, on a route that opted in,
// because the client gave an Idempotency-Key.
func idempotent(r *http.Request, p *Policy) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return p.IdempotencyKey && r.Header.Get("Idempotency-Key") != ""
}

// outcome is what a try left, as next sees it.
type outcome struct {
	status        int         // the response's, when there is one
	err           *pool.Error // nil when a response came
	lastTry       bool        // the policy's attempts are used up
	idempotent    bool
	replayable    bool // the body can be sent again (buffered or empty)
	methodAllowed bool // the policy's Methods let this method be retried
	clientGone    bool
	timeUp        bool // the request's deadline has passed
}

// next decides what follows a try: the whole retry policy as one pure
// function of the try's outcome. A response is retried after a backoff
// when its status is one the policy retries and the request is safe to
// repeat; a failure as decide's table says.
func next(o outcome, p *Policy) Decision {
	switch {
	case o.lastTry || o.clientGone || o.timeUp:
		return NoRetry
	case o.err == nil:
		if o.idempotent && o.methodAllowed && o.replayable && slices.Contains(p.Statuses, o.status) {
			return RetryBackoff
		}
		return NoRetry
	}
	d := decide(o.err, o.idempotent, o.replayable, p)
	if d != NoRetry && !o.methodAllowed && !o.err.NotProcessed() && o.err.Stage != pool.StageDial && o.err.Stage != pool.StageWait {
		return NoRetry // Methods narrows retries to what provably never reached the backend
	}
	return d
}

// Decision is whether and how to retry a failed try.
type Decision uint8

const (
	NoRetry Decision = iota
	// RetryNow: nothing reached the backend (or a fresh connection is all
	// that is needed); retry at once, on another endpoint when there is one.
	RetryNow
	// RetryBackoff: retry after a backoff.
	RetryBackoff
)

// decide is the retry decision table: what failed (e's stage), whether the
// request could have been processed, and whether it is safe to process twice.
// replayable says the body can be sent again (buffered or empty).
func decide(e *pool.Error, idem, replayable bool, p *Policy) Decision {
	switch {
	case e.Stage == pool.StageClientBody:
		return NoRetry // the client's fault; nothing to retry
	case e.Stage == pool.StageWait || e.Stage == pool.StageDial:
		return RetryNow // nothing sent, body untouched: safe for any method
	case !replayable:
		return NoRetry // the body is gone
	case e.NotProcessed():
		return RetryNow // nothing reached the backend, or nothing it got was read
	case e.Stage > pool.StageHeaders:
		return NoRetry // the response had begun
	case !idem && !p.RetryNonIdempotent:
		return NoRetry // the backend may have acted on it
	case e.Peer && e.Reused:
		return RetryNow // a reused connection died under the request: a fresh one is the cure
	default:
		return RetryBackoff // timeouts, resets on fresh connections, garbled headers
	}
}

// backoff returns the wait before retry n (1-based): full jitter over an
// exponentially growing window, capped.
func backoff(p *Policy, n int) time.Duration {
	if p.BackoffBase <= 0 {
		return 0
	}
	w := p.BackoffBase << (n - 1)
	if w > p.BackoffMax || w <= 0 {
		w = p.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(w)) + 1)
}

// Budget keeps retries to a share of the requests, so that retries never
// multiply an outage: a retry may start while the retries of the last
// budgetWindow stay below percent% of the requests of that window, and
// minRetries retries in flight are always allowed. Counting over a window
// rather than over the requests in flight lets the burst of a replica's
// crash (every request it held failing at once) be retried elsewhere, while
// an outage of every endpoint still adds at most percent% to their load.
type Budget struct {
	percent    int64
	minRetries int64
	retrying   atomic.Int64
	exhausted  atomic.Uint64
	window     [budgetSlots]budgetSlot
}

const (
	budgetSlots    = 10
	budgetSlotSpan = time.Second // budgetWindow = budgetSlots × budgetSlotSpan
)

// budgetSlot counts the requests and retries of one span of the window.
type budgetSlot struct {
	span     atomic.Int64 // which span (time / budgetSlotSpan) the counts are for
	requests atomic.Int64
	retries  atomic.Int64
}

// slot returns the slot of now's span, emptied if it held an older span's
// counts. Two callers racing at a span's start may lose a count or two:
// the budget is a bound on a share, not an account.
func (b *Budget) slot(now time.Time) *budgetSlot {
	span := now.UnixNano() / int64(budgetSlotSpan)
	s := &b.window[span%budgetSlots]
	if old := s.span.Load(); old != span && s.span.CompareAndSwap(old, span) {
		s.requests.Store(0)
		s.retries.Store(0)
	}
	return s
}

// request counts a request in the window.
func (b *Budget) request(now time.Time) { b.slot(now).requests.Add(1) }

// try takes a place for a retry; false when the budget refuses it.
func (b *Budget) try(now time.Time) bool {
	if b.retrying.Add(1) > b.minRetries && !b.withinShare(now) {
		b.retrying.Add(-1)
		b.exhausted.Add(1)
		return false
	}
	b.slot(now).retries.Add(1)
	return true
}

// withinShare reports whether the window's retries are below percent% of
// its requests.
func (b *Budget) withinShare(now time.Time) bool {
	span := now.UnixNano() / int64(budgetSlotSpan)
	var requests, retries int64
	for i := range b.window {
		s := &b.window[i]
		if span-s.span.Load() < budgetSlots {
			requests += s.requests.Load()
			retries += s.retries.Load()
		}
	}
	return retries*100 < requests*b.percent
}

func (b *Budget) done() { b.retrying.Add(-1) }

// NewBudget returns a retry budget of percent% of the requests of the last
// ten seconds, with minRetries retries in flight always allowed.
func NewBudget(percent, minRetries int) *Budget {
	if percent < 0 {
		percent = 0
	}
	return &Budget{percent: int64(percent), minRetries: int64(minRetries)}
}

// Exhausted counts retries refused by the budget.
func (b *Budget) Exhausted() uint64 { return b.exhausted.Load() }
