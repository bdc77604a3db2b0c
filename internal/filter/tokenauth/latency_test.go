package tokenauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/filter/authn"
	"github.com/sluice-gw/sluice/internal/filter/tokenauth"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/redisconn"
	"github.com/sluice-gw/sluice/internal/redisconn/redistest"
)

// BenchmarkTokenAuthLatency measures the latency TokenAuth adds, against a
// real redis-server: 1,000 requests per second to a route with the filter
// (10,000 distinct tokens) and, interleaved on the same schedule, 200 per
// second to the same backend through a route without it, for 10 seconds.
// The load is open loop: latency counts from when a request was due, so a
// stall is not hidden. Added latency is the difference of the two routes'
// percentiles. Run it once:
//
//	go test -run '^$' -bench TokenAuthLatency -benchtime 1x ./internal/filter/tokenauth
func BenchmarkTokenAuthLatency(b *testing.B) {
	const rate, every, duration, tokens = 1000, 5, 10 * time.Second, 10_000
	_, rc, _, g := setup(b, "")
	ctx := context.Background()
	pipe := rc.Pipeline()
	for i := range tokens {
		pipe.Set(ctx, fmt.Sprintf("token:tok-%d", i), fmt.Sprintf(`{"user_id":"u%d","claims":{"role":"r"}}`, i), time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	type job struct {
		due  time.Time
		auth bool
		n    int
	}
	type result struct {
		lat  []time.Duration
		errs map[string]int
	}
	run := func() (auth, open result) {
		auth.errs, open.errs = map[string]int{}, map[string]int{}
		var mu sync.Mutex
		jobs := make(chan job, 2*rate)
		var wg sync.WaitGroup
		for range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					path := "/open/x"
					if j.auth {
						path = "/auth/x"
					}
					req, _ := http.NewRequest("GET", gatewaytest.URL(g, path), nil)
					req.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", j.n%tokens))
					resp, err := client.Do(req)
					l := time.Since(j.due)
					res := &open
					if j.auth {
						res = &auth
					}
					mu.Lock()
					switch {
					case err != nil:
						res.errs[err.Error()]++
					case resp.StatusCode != 200:
						res.errs[resp.Status+" "+resp.Header.Get("X-Sluice-Reason")]++
					default:
						res.lat = append(res.lat, l)
					}
					mu.Unlock()
					if err == nil {
						resp.Body.Close()
					}
				}
			}()
		}
		start := time.Now()
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * time.Second / rate)
			if at.Sub(start) >= duration {
				break
			}
			time.Sleep(time.Until(at))
			jobs <- job{due: at, auth: true, n: i * 7919}
			if i%every == 0 {
				jobs <- job{due: at, n: i}
			}
		}
		close(jobs)
		wg.Wait()
		slices.Sort(auth.lat)
		slices.Sort(open.lat)
		return auth, open
	}
	pct := func(l []time.Duration, q float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(q*float64(len(l))))]
	}
	b.ResetTimer()
	for range b.N {
		auth, open := run()
		rp50, rp99 := redisRTT(rc, rate, 3*time.Second)
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
		b.ReportMetric(us(pct(open.lat, .5)), "open-p50-µs")
		b.ReportMetric(us(pct(open.lat, .99)), "open-p99-µs")
		b.ReportMetric(us(pct(auth.lat, .5)), "auth-p50-µs")
		b.ReportMetric(us(pct(auth.lat, .99)), "auth-p99-µs")
		b.ReportMetric(us(pct(auth.lat, .5)-pct(open.lat, .5)), "added-p50-µs")
		b.ReportMetric(us(pct(auth.lat, .99)-pct(open.lat, .99)), "added-p99-µs")
		b.ReportMetric(us(rp50), "redis-rtt-p50-µs")
		b.ReportMetric(us(rp99), "redis-rtt-p99-µs")
		failed := 0
		for _, c := range auth.errs {
			failed += c
		}
		b.ReportMetric(float64(failed), "auth-failed")
		if len(auth.errs)+len(open.errs) > 0 {
			// On a starved machine a Redis call can exceed the filter's 100ms
			// timeout; those answers (503) are counted, not timed.
			b.Logf("failed requests with TokenAuth: %v; without: %v", auth.errs, open.errs)
		}
	}
}

// redisRTT measures the filter's Redis round trip (GET + PTTL pipelined) at rate.
func redisRTT(rc *redis.Client, rate int, d time.Duration) (p50, p99 time.Duration) {
	var lat []time.Duration
	ctx := context.Background()
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		t0 := time.Now()
		p := rc.Pipeline()
		p.Get(ctx, fmt.Sprintf("token:tok-%d", i%1000))
		p.PTTL(ctx, fmt.Sprintf("token:tok-%d", i%1000))
		p.Exec(ctx)
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// BenchmarkTokenAuthFilterLatency measures the filter alone: its RoundTrip
// with a next that answers at once, against the real redis-server, at 1,000
// calls per second for 10 seconds (open loop, latency from when a call was
// due). Without the HTTP client, proxy and backend it needs little CPU, so
// it shows the filter's cost even on a busy machine. Run it once:
//
//	go test -run '^$' -bench TokenAuthFilterLatency -benchtime 1x ./internal/filter/tokenauth
func BenchmarkTokenAuthFilterLatency(b *testing.B) {
	const rate, duration, tokens = 1000, 10 * time.Second, 10_000
	rs := redistest.Start(b)
	client := redisconn.New(redisconn.Options{Addr: rs.Addr, DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	defer client.Close()
	ctx := context.Background()
	pipe := client.Pipeline()
	for i := range tokens {
		pipe.Set(ctx, fmt.Sprintf("token:tok-%d", i), fmt.Sprintf(`{"user_id":"u%d","claims":{"role":"r"}}`, i), time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	f := tokenauth.New(tokenauth.Options{
		KeyPrefix: "token:", Source: authn.Source{Header: "Authorization", Scheme: "Bearer"},
		UserIDField: "user_id", ClaimsField: "claims", UserHeader: "X-User-Id",
		ClaimHeaders: []authn.Mapping{{Claim: "role", Header: "X-Role"}},
		SlidingTTL:   4 * time.Hour, RefreshBelow: 2 * time.Hour, RefreshQueue: 4096,
		Guard: redisconn.GuardOptions{Timeout: 100 * time.Millisecond, MaxConcurrency: 256},
	}, client, slog.New(slog.DiscardHandler))
	ok := roundTripFunc(func(*http.Request) (*http.Response, error) { return &http.Response{StatusCode: 200}, nil })
	b.ResetTimer()
	for range b.N {
		var mu sync.Mutex
		var lat []time.Duration
		failed := 0
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * time.Second / rate)
			if due.Sub(start) >= duration {
				break
			}
			time.Sleep(time.Until(due))
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequest("GET", "http://gw/auth/x", nil)
				r.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", (i*7919)%tokens))
				_, err := f.RoundTrip(r, ok)
				d := time.Since(due)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)*999/1000].Microseconds()), "p99.9-µs")
		b.ReportMetric(float64(failed), "failed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
