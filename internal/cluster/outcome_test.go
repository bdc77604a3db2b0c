package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/exchange"
)

// Discovery republishing the set with new weights while requests are
// picked is not a data race (run under -race): an endpoint's weight is
// read by every picker and written by SetEndpoints.
func TestWeightChangesDoNotRaceWithPicks(t *testing.T) {
	a, b := serve(t, nil), serve(t, nil)
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(a.addr, b.addr))
	p := DefaultPolicy
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for w := 1; ; w = w%5 + 1 {
			select {
			case <-stop:
				return
			default:
			}
			c.SetEndpoints([]endpoint.Spec{{Addr: a.addr, Weight: w}, {Addr: b.addr, Weight: 6 - w}})
			time.Sleep(100 * time.Microsecond)
		}
	})
	for i := 0; i < 200; i++ {
		if _, err := forward(t, c, http.MethodGet, &p); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	c.SetEndpoints([]endpoint.Spec{{Addr: a.addr, Weight: 2}, {Addr: b.addr, Weight: 5}})
	c.SetEndpoints([]endpoint.Spec{{Addr: a.addr, Weight: 7}, {Addr: b.addr}})
	for _, e := range c.Endpoints() {
		if want := map[string]int{a.addr: 7, b.addr: 5}[e.Addr]; e.Weight() != want {
			t.Fatalf("%s weight %d, want %d (a spec without weight keeps the last one)", e.Addr, e.Weight(), want)
		}
	}
}

// An endpoint that accepts requests and never answers is ejected: a try
// that timed out is a failure for outlier detection, not a success that
// resets the run of failures.
func TestEndpointThatNeverAnswersIsEjected(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	silent := serve(t, func(w http.ResponseWriter, r *http.Request) { <-hang })
	fine := serve(t, nil)
	c := newCluster(Options{Name: "u", ConsecutiveFailures: 2, MaxEjectionPercent: 50})
	defer c.Close()
	c.SetEndpoints(specs(silent.addr, fine.addr))
	p := DefaultPolicy
	p.Attempts = 1
	p.ResponseTimeout = 100 * time.Millisecond
	for i := 0; i < 6; i++ {
		forward(t, c, http.MethodGet, &p)
	}
	for _, e := range c.Endpoints() {
		if e.Addr == silent.addr && !e.Ejected(time.Now().UnixNano()) {
			t.Fatalf("an endpoint that timed out %d times in a row is not ejected", silent.hits.Load())
		}
	}
	// Round robin: the silent endpoint timed out on requests 1 and 3, was
	// ejected, and the fine one answered the other four.
	if n := fine.hits.Load(); n != 4 {
		t.Fatalf("the answering endpoint served %d of 6 requests, want 4 (the silent one ejected after its second timeout)", n)
	}
}

// A 5xx the policy would retry reaches the client as it is when there is no
// time left for the backoff, or when the client left during it, instead of a
// made-up 504: the backend's answer is the truth.
func TestRetriableStatusIsPassedOnWhenNoRetryCanFollow(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "backend")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	p.Statuses = []int{503}
	p.BackoffBase, p.BackoffMax = time.Hour, time.Hour

	t.Run("backoff would cross the deadline", func(t *testing.T) {
		p := p
		p.ResponseTimeout = 2 * time.Second
		resp, err := forward(t, c, http.MethodGet, &p)
		if err != nil || resp.StatusCode != 503 || resp.Header.Get("X-From") != "backend" {
			t.Fatalf("got %v, %v; want the backend's 503", resp, err)
		}
	})
	t.Run("client left during the backoff", func(t *testing.T) {
		p := p
		p.ResponseTimeout = 0
		p.BackoffBase, p.BackoffMax = 5*time.Second, 5*time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(exchange.With(ctx, &exchange.Exchange{}), http.MethodGet, "http://u/", nil)
		for {
			resp, err := c.Forward(req, &p)
			if err != nil {
				t.Fatalf("got %v; want the backend's 503", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("X-From") != "backend" {
				t.Fatalf("got %d; want the backend's 503", resp.StatusCode)
			}
			if ctx.Err() != nil {
				return // the client left while the retry waited (not during a 1 ns backoff)
			}
		}
	})
}

// A retry refused by a route's own budget (the only kind production uses)
// is counted on the cluster, which the retry-budget metric reads.
func TestRouteBudgetRefusalsAreCountedOnTheCluster(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	p.Statuses = []int{503}
	p.Budget = NewBudget(0, 0) // no retry allowed
	if resp, err := forward(t, c, http.MethodGet, &p); err != nil || resp.StatusCode != 503 {
		t.Fatalf("got %v, %v; want the 503", resp, err)
	}
	if n := c.RetriesRefused(); n != 1 {
		t.Fatalf("retries refused counted on the cluster: %d, want 1", n)
	}
}

// A POST with an Idempotency-Key is replayed only on a route that opted in:
// any client can send the header, so by default it changes nothing.
func TestIdempotencyKeyIsARouteOptIn(t *testing.T) {
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	post := func(p *Policy) int64 {
		before := s.hits.Load()
		req, _ := http.NewRequest(http.MethodPost, "http://u/", nil)
		req.Header.Set("Idempotency-Key", "k1")
		req = req.WithContext(exchange.With(context.Background(), &exchange.Exchange{}))
		resp, err := c.Forward(req, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return s.hits.Load() - before
	}
	p := DefaultPolicy
	p.Statuses = []int{503}
	p.BackoffBase, p.BackoffMax = time.Millisecond, time.Millisecond
	if n := post(&p); n != 1 {
		t.Fatalf("POST with Idempotency-Key on a route without the opt-in sent %d times, want 1", n)
	}
	p.IdempotencyKey = true
	if n := post(&p); n != int64(p.Attempts) {
		t.Fatalf("POST with Idempotency-Key on a route that opted in sent %d times, want %d", n, p.Attempts)
	}
}

var _ = errors.New

// A body the proxy already holds whole in memory (read ahead to enforce a
// route's size cap) is replayed as it is, beyond the 64 KiB the cluster
// would buffer itself: one buffer per request, not a second copy, and a
// retry where the copy used to be too small for one.
func TestInMemoryBodyIsReplayedWithoutASecondCopy(t *testing.T) {
	var sizes []int64
	var mu sync.Mutex
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, r.ContentLength)
		mu.Unlock()
		if first { // read the request, then close without answering
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Write([]byte("ok"))
	})
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(s.addr))
	p := DefaultPolicy
	p.BackoffBase = time.Millisecond
	body := make([]byte, 200<<10)
	req, _ := http.NewRequest(http.MethodPut, "http://u/", nil)
	req.Body, req.ContentLength = InMemory(body), -1
	req = req.WithContext(exchange.With(context.Background(), &exchange.Exchange{}))
	resp, err := c.Forward(req, &p)
	if err != nil {
		t.Fatalf("PUT of 200 KiB held in memory, first try closed unanswered: %v", err)
	}
	resp.Body.Close()
	if len(sizes) != 2 || sizes[0] != 200<<10 || sizes[1] != 200<<10 {
		t.Fatalf("backend saw bodies of %v, want two of %d", sizes, 200<<10)
	}
}

// A replica that crashes resets every request it holds at once; each of
// those GETs is retried on the replica that is left. The retry budget
// counts the share of retries over recent requests, so such a burst fits
// in it, where a budget of the requests in flight refused most of it.
func TestACrashedReplicasBurstIsRetriedElsewhere(t *testing.T) {
	var crashed atomic.Bool
	a := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if !crashed.Load() {
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close() // RST: the request was read and may have been acted on
		}
	})
	b := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if crashed.Load() {
			time.Sleep(200 * time.Millisecond) // the retries overlap
		}
	})
	c := newCluster(Options{Name: "u"})
	defer c.Close()
	c.SetEndpoints(specs(a.addr, b.addr))
	p := DefaultPolicy
	p.Budget = NewBudget(20, 3) // a route's default budget
	burst := func() (failed int) {
		var wg sync.WaitGroup
		var n atomic.Int64
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := forward(t, c, http.MethodGet, &p); err != nil {
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(n.Load())
	}
	for i := 0; i < 5; i++ { // steady traffic, and idle connections to a
		if n := burst(); n != 0 {
			t.Fatalf("%d failures before the crash", n)
		}
	}
	crashed.Store(true)
	if n := burst(); n != 0 {
		t.Fatalf("%d of 20 GETs failed when a replica crashed under them (retries refused: %d)", n, c.RetriesRefused())
	}
}
