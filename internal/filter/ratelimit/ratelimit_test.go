package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/redisconn/redistest"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

func send(t *testing.T, c *http.Client, g *gateway.Gateway, path string, h http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", gatewaytest.URL(g, path), nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, _ := gatewaytest.Do(t, c, req)
	return resp
}

// TestRequestRateLimiter runs the same cases on the local and the Redis limiter.
func TestRequestRateLimiter(t *testing.T) {
	rs := redistest.Start(t)
	be := gatewaytest.NewEcho(t, "be")
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	for _, limiter := range []string{"local", "redis"} {
		t.Run(limiter, func(t *testing.T) {
			rc.FlushAll(context.Background()) // the shortcut route uses Redis in both runs
			g := gatewaytest.Start(t, fmt.Sprintf(`
				redis: {address: %[1]s}
				routes:
				  - id: spring-names
				    uri: http://%[2]s
				    predicates: [Path=/a/**]
				    filters:
				      - name: RequestRateLimiter
				        args:
				          redis-rate-limiter.replenishRate: 1
				          redis-rate-limiter.burstCapacity: 3
				          key-resolver: header:X-Api-Key
				          limiter: %[3]s
				          timeout: 1s
				  - id: snake-names
				    uri: http://%[2]s
				    predicates: [Path=/b/**]
				    filters:
				      - name: RequestRateLimiter
				        args: {replenish_rate: 1, burst_capacity: 4, requested_tokens: 2, key_resolver: "header:X-Api-Key", deny_empty_key: false, limiter: %[3]s, timeout: 1s}
				  - id: path-var
				    uri: http://%[2]s
				    predicates: ["Path=/t/{tenant}/**"]
				    filters: ["RequestRateLimiter=1,1,path:tenant"]
				  - id: empty-status
				    uri: http://%[2]s
				    predicates: [Path=/e/**]
				    filters:
				      - name: RequestRateLimiter
				        args: {replenish_rate: 1, burst_capacity: 1, key_resolver: "user", empty-key-status-code: 401, limiter: %[3]s, timeout: 1s}
				`, rs.Addr, be.Addr(), limiter))
			c := gatewaytest.Client(t)
			key := http.Header{"X-Api-Key": {"k-" + limiter}}
			type want struct {
				status    int
				remaining string
			}
			tests := []struct {
				desc  string
				path  string
				h     http.Header
				wants []want
			}{
				{desc: "burst then 429", path: "/a/x", h: key, wants: []want{{200, "2"}, {200, "1"}, {200, "0"}, {429, "0"}}},
				{desc: "requested tokens", path: "/b/x", h: key, wants: []want{{200, "2"}, {200, "0"}, {429, "0"}}},
				{desc: "empty key allowed when deny-empty-key is false", path: "/b/x", wants: []want{{200, ""}, {200, ""}, {200, ""}}},
				{desc: "empty key denied with 403 by default", path: "/a/x", wants: []want{{403, ""}}},
				{desc: "empty key status code", path: "/e/x", wants: []want{{401, ""}}},
				{desc: "path variable: tenant one", path: "/t/one/x", wants: []want{{200, "0"}, {429, "0"}}},
				{desc: "path variable: tenant two has its own bucket", path: "/t/two/x", wants: []want{{200, "0"}, {429, "0"}}},
			}
			for _, tc := range tests {
				t.Run(tc.desc, func(t *testing.T) {
					for i, w := range tc.wants {
						resp := send(t, c, g, tc.path, tc.h)
						if resp.StatusCode != w.status {
							t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, w.status)
						}
						if got := resp.Header.Get("X-RateLimit-Remaining"); got != w.remaining {
							t.Errorf("request %d: X-RateLimit-Remaining %q, want %q", i, got, w.remaining)
						}
						if w.remaining != "" && (resp.Header.Get("X-RateLimit-Replenish-Rate") == "" ||
							resp.Header.Get("X-RateLimit-Burst-Capacity") == "" || resp.Header.Get("X-RateLimit-Requested-Tokens") == "") {
							t.Errorf("request %d: X-RateLimit headers missing: %v", i, resp.Header)
						}
					}
				})
			}
		})
	}
}

func TestRequestRateLimiterRedisDown(t *testing.T) {
	testlock.Realtime(t)
	rs := redistest.Start(t)
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, fmt.Sprintf(`
		redis: {address: %[1]s, dial_timeout: 200ms}
		routes:
		  - id: allow
		    uri: http://%[2]s
		    predicates: [Path=/allow/**]
		    filters: [{name: RequestRateLimiter, args: {replenish_rate: 1, burst_capacity: 1, timeout: 50ms}}]
		  - id: deny
		    uri: http://%[2]s
		    predicates: [Path=/deny/**]
		    filters: [{name: RequestRateLimiter, args: {replenish_rate: 100, burst_capacity: 100, timeout: 50ms, redis_unavailable: deny}}]
		`, rs.Addr, be.Addr()))
	c := gatewaytest.Client(t)
	rs.Kill()
	tests := []struct {
		desc   string
		path   string
		status int
	}{
		{desc: "allow (Spring's behaviour): passes without limit", path: "/allow/x", status: 200},
		{desc: "deny: 503", path: "/deny/x", status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			for i := range 10 {
				start := time.Now()
				resp := send(t, c, g, tc.path, nil)
				d := time.Since(start)
				if resp.StatusCode != tc.status {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
				}
				if d > 500*time.Millisecond {
					t.Errorf("request %d took %s with Redis down", i, d)
				}
			}
		})
	}
	rs.Restart()
	if !gatewaytest.Eventually(5*time.Second, func() bool {
		return send(t, c, g, "/deny/x", nil).StatusCode == 200
	}) {
		t.Fatal("did not recover after Redis restarted")
	}
}

// TestRequestRateLimiterAccuracy loads two gateways sharing one Redis at 5x
// the replenish rate for 10 seconds and compares the requests allowed with
// what the bucket permits. The bucket refills in whole seconds of Redis
// time (Spring's script), so the load runs from just after a second starts
// to the middle of the eleventh (a request delayed on a busy machine must
// still reach Redis within that second): the bucket permits exactly
// burst + 10 × rate.
func TestRequestRateLimiterAccuracy(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("10 s load test")
	}
	const rate, burst, clients = 20, 40, 20
	rs := redistest.Start(t)
	be := gatewaytest.NewEcho(t, "be")
	cfg := fmt.Sprintf(`
		redis: {address: %s}
		routes:
		  - id: limited
		    uri: http://%s
		    # accuracy, not timeouts, is tested here: a generous timeout for a busy machine
		    filters: [{name: RequestRateLimiter, args: {replenish_rate: %d, burst_capacity: %d, key_resolver: client_ip, timeout: 1s}}]
		`, rs.Addr, be.Addr(), rate, burst)
	gs := []*gateway.Gateway{gatewaytest.Start(t, cfg), gatewaytest.Start(t, cfg)}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()

	// Start 50ms into a second of Redis time (Redis and the test share the clock).
	now, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	skew := time.Since(now)
	first := now.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)
	end := first.Truncate(time.Second).Add(10*time.Second + 500*time.Millisecond)
	time.Sleep(time.Until(first.Add(skew)))

	var allowed, limited, failOpen, other atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second * clients / (5 * rate) // each client's share of 5x the rate
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := gs[i%len(gs)]
			c := gatewaytest.Client(t)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Now().Before(end.Add(skew)) {
				resp, err := c.Get(gatewaytest.URL(g, "/x"))
				if err != nil {
					other.Add(1)
				} else {
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						if resp.Header.Get("X-RateLimit-Remaining") == "-1" {
							failOpen.Add(1) // Redis did not answer in time: allowed without a token
						} else {
							allowed.Add(1)
						}
					case 429:
						limited.Add(1)
					default:
						other.Add(1)
					}
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	want := float64(burst + 10*rate)
	got := float64(allowed.Load())
	t.Logf("offered %d requests (%.0f/s), allowed %.0f, limited %d, allowed without an answer from Redis %d, errors %d; the bucket permits %.0f",
		allowed.Load()+limited.Load()+failOpen.Load()+other.Load(), float64(allowed.Load()+limited.Load())/10.45, got, limited.Load(), failOpen.Load(), other.Load(), want)
	if failOpen.Load() > int64(want*0.05) {
		t.Errorf("%d requests were allowed because Redis did not answer within the filter's timeout", failOpen.Load())
	}
	if other.Load() > 0 {
		t.Errorf("%d requests failed", other.Load())
	}
	if got < want*0.95 || got > want*1.05 {
		t.Errorf("allowed %.0f, want %.0f ±5%%", got, want)
	}
	if offered := allowed.Load() + limited.Load(); float64(offered) < 4*rate*10.45 {
		t.Errorf("offered only %d requests; the test needs about 5x the rate (%.0f)", offered, 5*rate*10.45)
	}
}

func TestRequestRateLimiterConfigErrors(t *testing.T) {
	tests := []struct {
		desc string
		args string
		want string
	}{
		{desc: "burst below rate", args: "{replenish_rate: 10, burst_capacity: 5}", want: "must be at least replenishRate"},
		{desc: "both spellings", args: "{replenish_rate: 1, redis-rate-limiter.replenishRate: 1}", want: "same argument"},
		{desc: "redis without block", args: "{limiter: redis}", want: "needs a top-level redis block"},
		{desc: "bad limiter", args: "{limiter: memcached}", want: "not local or redis"},
		{desc: "spring bean", args: `{key-resolver: "#{@userKeyResolver}"}`, want: "Spring bean reference"},
		{desc: "bad unavailable policy", args: "{redis_unavailable: maybe}", want: "not allow or deny"},
		{desc: "unknown argument", args: "{burst: 1}", want: `unknown argument "burst"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := gatewaytest.TryStart("routes: [{id: a, uri: 'http://127.0.0.1:1', filters: [{name: RequestRateLimiter, args: " + tc.args + "}]}]")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
