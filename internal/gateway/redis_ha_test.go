package gateway_test

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

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/internal/redisconn/redistest"
)

// redisTopology is a Redis deployment a failover test runs against: the
// gateway's redis block, and kill, which kills (by PID) the master holding
// the given keys and reports when a new one serves them.
type redisTopology struct {
	block string
	// together reports whether two keys live on one master.
	together func(a, b string) bool
	kill     func(t *testing.T, keys []string) (promoted func() bool)
	// client writes to the deployment as the test's own Redis client.
	client redis.UniversalClient
}

// TestRedisFailoverUnderLoad kills the Redis master under a steady load of
// rate-limited requests, against a real 3-master/3-replica Redis Cluster and
// against a master, a replica and three Sentinels. It proves that the
// gateway keeps answering every request during the failover; that a
// limiter with redis_unavailable: allow lets every request through (some
// without Redis: X-RateLimit-Remaining -1) and one with deny answers 503
// (and nothing else fails); and that once the new master serves, the
// limiter is exact again: a fresh bucket of 10 requests allows exactly 10.
// TokenAuth finds a token in the same Redis, before and after.
func TestRedisFailoverUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) redisTopology
	}{
		{name: "cluster", start: startRedisCluster},
		{name: "sentinel", start: startRedisSentinel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testRedisFailover(t, tc.start(t))
		})
	}
}

func startRedisCluster(t *testing.T) redisTopology {
	cl := redistest.StartCluster(t, 3, 1)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { c.Close() })
	return redisTopology{
		block:    fmt.Sprintf("redis: {cluster: {nodes: [%s]}}", strings.Join(cl.Addrs()[:2], ", ")),
		together: func(a, b string) bool { return masterFor(t, c, a) == masterFor(t, c, b) },
		client:   c,
		kill: func(t *testing.T, keys []string) func() bool {
			victim := masterFor(t, c, keys[0])
			for _, k := range keys[1:] {
				if m := masterFor(t, c, k); m != victim {
					t.Fatalf("keys on masters %s and %s, want one", victim, m)
				}
			}
			t.Logf("killing the cluster master of the limiter's keys: %s", cl.Node(victim))
			cl.Node(victim).Kill()
			survivor := cl.Nodes[0]
			if survivor.Addr == victim {
				survivor = cl.Nodes[1]
			}
			return func() bool {
				nodes, _ := survivor.Command("cluster", "nodes")
				info, _ := survivor.Command("cluster", "info")
				for l := range strings.SplitSeq(nodes, "\n") {
					if strings.Contains(l, " "+victim+"@") {
						return strings.Contains(l, ",fail ") && strings.Contains(info, "cluster_state:ok")
					}
				}
				return false
			}
		},
	}
}

// masterFor is the address of the cluster master that holds key.
func masterFor(t testing.TB, c *redis.ClusterClient, key string) string {
	m, err := c.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return m.Options().Addr
}

func startRedisSentinel(t *testing.T) redisTopology {
	st := redistest.StartSentinel(t, 1, 3)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: st.Name, SentinelAddrs: st.Addrs()})
	t.Cleanup(func() { c.Close() })
	return redisTopology{
		client:   c,
		block:    fmt.Sprintf("redis: {sentinel: {master: %s, nodes: [%s]}}", st.Name, strings.Join(st.Addrs(), ", ")),
		together: func(a, b string) bool { return true },
		kill: func(t *testing.T, _ []string) func() bool {
			old := st.MasterAddr()
			t.Logf("killing the Sentinels' master: %s", st.Server(old))
			st.Server(old).Kill()
			return func() bool {
				now := st.MasterAddr()
				return now != "" && now != old
			}
		},
	}
}

// limiterKeys are the Redis keys (one cluster slot) of route's bucket for
// X-Key: v.
func limiterKeys(route, v string) string {
	return "request_rate_limiter.{" + route + ".header:" + v + "}.tokens"
}

func testRedisFailover(t *testing.T, topo redisTopology) {
	be := gatewaytest.NewEcho(t, "be")
	limiter := func(id, onError string, rate, burst, requested int) string {
		return fmt.Sprintf("\n  - id: %[1]s\n    uri: http://%[2]s\n    predicates: [\"Path=/%[1]s/**\"]\n"+
			"    filters:\n      - name: RequestRateLimiter\n        args: {replenish_rate: %[3]d, burst_capacity: %[4]d, "+
			"requested_tokens: %[5]d, key_resolver: \"header:X-Key\", redis_unavailable: %[6]s}", id, be.Addr(), rate, burst, requested, onError)
	}
	g := gatewaytest.Start(t, topo.block+"\nroutes:"+limiter("open", "allow", 100000, 100000, 1)+
		limiter("closed", "deny", 100000, 100000, 1)+limiter("exact", "allow", 1, 100, 10)+
		"\n  - id: auth\n    uri: http://"+be.Addr()+"\n    predicates: [\"Path=/auth/**\"]\n    filters: [\"TokenAuth\"]")
	tokenAuth := func(when string) {
		token := "tok-" + when
		if err := topo.client.Set(context.Background(), "token:"+token, `{"user_id": "u-`+when+`"}`, time.Hour).Err(); err != nil {
			t.Fatalf("storing a token: %v", err)
		}
		for _, tc := range []struct {
			token  string
			status int
		}{{token, 200}, {"unknown-" + when, 401}} {
			req, _ := http.NewRequest("GET", gatewaytest.URL(g, "/auth/"), nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			if resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req); resp.StatusCode != tc.status {
				t.Errorf("TokenAuth %s the failover, token %s: %d %s, want %d", when, tc.token, resp.StatusCode, body, tc.status)
			}
		}
	}
	tokenAuth("before")

	exact := func(key string) (allowed, limited int) {
		c := gatewaytest.Client(t)
		for range 15 {
			req, _ := http.NewRequest("GET", gatewaytest.URL(g, "/exact/"), nil)
			req.Header.Set("X-Key", key)
			resp, _ := gatewaytest.Do(t, c, req)
			switch resp.StatusCode {
			case 200:
				allowed++
			case 429:
				limited++
			default:
				t.Fatalf("exact: status %d", resp.StatusCode)
			}
		}
		return allowed, limited
	}
	if a, l := exact("before"); a != 10 || l != 5 {
		t.Fatalf("before the failover: %d allowed, %d limited of 15, want 10 and 5", a, l)
	}

	// The two routes' buckets on the master that will be killed.
	closedKey := "load"
	for i := 0; !topo.together(limiterKeys("open", "load"), limiterKeys("closed", closedKey)); i++ {
		closedKey = fmt.Sprint("load", i)
	}
	var open, closed loadCounts
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := gatewaytest.Client(t)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if (n+i)%2 == 0 {
					open.send(c, gatewaytest.URL(g, "/open/"), "load")
				} else {
					closed.send(c, gatewaytest.URL(g, "/closed/"), closedKey)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	if open.count(200) == 0 || closed.count(200) == 0 {
		t.Fatalf("no request went through before the kill: open %s, closed %s", &open, &closed)
	}
	promoted := topo.kill(t, []string{limiterKeys("open", "load"), limiterKeys("closed", closedKey)})
	closed.streak.Store(0)
	if !gatewaytest.Eventually(30*time.Second, promoted) {
		t.Fatal("no new master within 30s")
	}
	// The limiter is back when the closed route answers 200 twenty times in a row.
	back := gatewaytest.Eventually(30*time.Second, func() bool { return closed.streak.Load() >= 20 })
	close(stop)
	wg.Wait()
	t.Logf("during the failover: open route (allow) %s; closed route (deny) %s", &open, &closed)
	if !back {
		t.Fatal("the limiter did not answer from the new master within 30s")
	}
	if open.total() != open.count(200) || open.failOpen.Load() == 0 {
		t.Errorf("open route: %s; want every request 200, some allowed without Redis (remaining -1)", &open)
	}
	if closed.count(503) == 0 || closed.total() != closed.count(200)+closed.count(503) {
		t.Errorf("closed route: %s; want only 200 and 503, some 503", &closed)
	}
	tokenAuth("after")
	a, l := exact("after")
	t.Logf("after the failover, a fresh bucket of 10 requests: %d allowed, %d limited of 15", a, l)
	if a != 10 || l != 5 {
		t.Errorf("after the failover: %d allowed, %d limited of 15, want 10 and 5", a, l)
	}
}

// loadCounts counts the answers of one route under load.
type loadCounts struct {
	mu       sync.Mutex
	status   map[int]int
	errs     int
	failOpen atomic.Int64 // 200s with X-RateLimit-Remaining: -1 (allowed without Redis)
	streak   atomic.Int64 // 200s in a row that Redis counted
}

func (lc *loadCounts) send(c *http.Client, url, key string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Key", key)
	resp, err := c.Do(req)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.status == nil {
		lc.status = map[int]int{}
	}
	if err != nil {
		lc.errs++
		lc.streak.Store(0)
		return
	}
	resp.Body.Close()
	lc.status[resp.StatusCode]++
	switch {
	case resp.StatusCode == 200 && resp.Header.Get("X-RateLimit-Remaining") == "-1":
		lc.failOpen.Add(1)
		lc.streak.Store(0)
	case resp.StatusCode == 200:
		lc.streak.Add(1)
	default:
		lc.streak.Store(0)
	}
}

func (lc *loadCounts) count(status int) int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.status[status]
}

func (lc *loadCounts) total() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	n := lc.errs
	for _, v := range lc.status {
		n += v
	}
	return n
}

func (lc *loadCounts) String() string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return fmt.Sprintf("statuses %v, transport errors %d, allowed without Redis %d", lc.status, lc.errs, lc.failOpen.Load())
}
