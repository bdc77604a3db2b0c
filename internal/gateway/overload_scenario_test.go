package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

// latencies is a concurrency-safe list of durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(l.d))
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (l *latencies) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.d) }

// openLoop sends rate GETs per second to url for d, each on schedule
// whatever the earlier ones do, and records the latency of the 200s; it
// returns the number of other outcomes.
func openLoop(t *testing.T, c *http.Client, url string, rate int, d time.Duration, lat *latencies) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := c.Get(url)
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
				return
			}
			lat.add(time.Since(start))
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// Scenario 15: one route's backend takes 500 ms and 300 clients hit it at
// once, while 50 req/s go to a healthy route and probes hit the admin port.
// The slow route's limit (20) bounds what it holds; the excess gets fast
// 503s with Retry-After; the healthy route's p99 stays within 2× of its p99
// without the load; liveness and readiness answer within 100 ms throughout.
//
// The machine is shared and small (2 cores), so a latency bound can be
// broken by a neighbour's burst: the measurement is made up to three times
// and passes if one run meets every bound (a real regression fails them all).
// Under the race detector, which slows the in-process load generator and
// the gateway alike several times over, only the functional bounds are
// checked (shedding with 503 + Retry-After, the limit held, probes and the
// healthy route answering 200), in one run.
func TestScenario15SlowRoute(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("runs for about 8s, up to 24s")
	}
	var problems []string
	runs := 3
	if raceDetector {
		runs = 1
	}
	for attempt := 1; attempt <= runs; attempt++ {
		if problems = scenario15(t); len(problems) == 0 {
			return
		}
		t.Logf("run %d missed: %s", attempt, strings.Join(problems, "; "))
	}
	t.Errorf("scenario 15 failed %d times; last run: %s", runs, strings.Join(problems, "; "))
}

func scenario15(t *testing.T) (problems []string) {
	fail := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var slowNow, slowPeak atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := slowNow.Add(1)
		defer slowNow.Add(-1)
		for p := slowPeak.Load(); n > p && !slowPeak.CompareAndSwap(p, n); p = slowPeak.Load() {
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-r.Context().Done():
		}
		w.Write([]byte("slow"))
	}))
	defer slow.Close()
	// The healthy backend does some work of its own (20 ms), as a real one
	// does: the gateway's share of its latency is what must not grow.
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	defer healthy.Close()
	g, err := gatewaytest.TryStart(`
		routes:
		  - id: slow
		    uri: http://`+slow.Listener.Addr().String()+`
		    predicates: [Path=/slow/**]
		    max_concurrent_requests: 20
		  - id: healthy
		    uri: http://`+healthy.Listener.Addr().String()+`
		    predicates: [Path=/healthy/**]
		`, gatewaytest.WithLogConfig("access_sample_2xx: 0"))
	if err != nil {
		t.Fatal(err)
	}
	defer gatewaytest.Stop(g)

	client := func(conns int) *http.Client {
		tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	hc := client(64)
	healthyURL := gatewaytest.URL(g, "/healthy/x")

	// Unloaded: the healthy route alone.
	var base latencies
	if failed := openLoop(t, hc, healthyURL, 50, 2500*time.Millisecond, &base); failed > 0 {
		fail("%d healthy requests failed without load", failed)
	}
	baseP99 := base.quantile(0.99)

	// Loaded: 300 clients on the slow route, each sending its next request
	// as soon as the last one ends, or after the Retry-After when shed (so
	// 300 clients keep coming at it); probes every 50 ms throughout.
	stop := make(chan struct{})
	loadStart := time.Now()
	var shedOK, shedBad, slowOK atomic.Int64
	var shedLat latencies
	var wg sync.WaitGroup
	sc := client(300)
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The clients arrive over the first 600ms rather than in one
			// instant: 300 TCP handshakes in the same millisecond, in this
			// same process, would measure the test's own burst.
			time.Sleep(time.Duration(i) * 2 * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := sc.Get(gatewaytest.URL(g, "/slow/x"))
				if err != nil {
					shedBad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					slowOK.Add(1)
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && resp.Header.Get("X-Sluice-Reason") == "overloaded":
					shedOK.Add(1)
					shedLat.add(time.Since(start))
					time.Sleep(time.Second) // Retry-After: 1
				default:
					shedBad.Add(1)
				}
			}
		}()
	}
	var probeMax atomic.Int64
	var probeFailed atomic.Int64
	var probes sync.WaitGroup
	probes.Add(1)
	go func() {
		defer probes.Done()
		pc := client(2)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			path := []string{"/healthz/live", "/healthz/ready"}[i%2]
			start := time.Now()
			resp, err := pc.Get("http://" + g.AdminAddr() + path)
			d := time.Since(start)
			if err != nil || resp.StatusCode != 200 {
				probeFailed.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
			if d > 100*time.Millisecond {
				t.Logf("probe %s took %v, %v into the load", path, d, time.Since(loadStart))
			}
			for p := probeMax.Load(); int64(d) > p && !probeMax.CompareAndSwap(p, int64(d)); p = probeMax.Load() {
			}
		}
	}()
	time.Sleep(time.Second) // the slow route fills up
	var loaded latencies
	failed := openLoop(t, hc, healthyURL, 50, 4*time.Second, &loaded)
	close(stop)
	wg.Wait()
	probes.Wait()
	loadedP99 := loaded.quantile(0.99)

	t.Logf("healthy route: unloaded p50 %v p99 %v (%d reqs); under load p50 %v p99 %v (%d reqs, %d failed)",
		base.quantile(0.5), baseP99, base.len(), loaded.quantile(0.5), loadedP99, loaded.len(), failed)
	t.Logf("slow route: %d served, %d shed (503 p50 %v p99 %v), %d other outcomes; backend peak concurrency %d",
		slowOK.Load(), shedOK.Load(), shedLat.quantile(0.5), shedLat.quantile(0.99), shedBad.Load(), slowPeak.Load())
	t.Logf("admin probes: slowest %v, %d failed", time.Duration(probeMax.Load()), probeFailed.Load())

	if failed > 0 {
		fail("%d healthy requests failed under load", failed)
	}
	if raceDetector {
		t.Log("race detector on: latency bounds not checked")
	}
	if loadedP99 > 2*baseP99 && !raceDetector {
		fail("healthy p99 %v under load, more than 2× the unloaded %v", loadedP99, baseP99)
	}
	if d := time.Duration(probeMax.Load()); (d > 100*time.Millisecond && !raceDetector) || probeFailed.Load() > 0 {
		fail("admin probes: slowest %v, %d failed; want every one 200 within 100ms", d, probeFailed.Load())
	}
	if shedOK.Load() == 0 || shedBad.Load() > 0 {
		fail("slow route: %d shed with 503 + Retry-After, %d other failures", shedOK.Load(), shedBad.Load())
	}
	if p := shedLat.quantile(0.99); p > 100*time.Millisecond && !raceDetector {
		fail("shedding is not fast: 503 p99 %v", p)
	}
	if peak := slowPeak.Load(); peak > 20 {
		fail("the slow backend saw %d requests at once, over the route's limit of 20", peak)
	}
	if slowOK.Load() == 0 {
		fail("the slow route served nothing")
	}
	return problems
}
