package redisconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/redisconn/redistest"
)

// failoverOptions are the client settings of these tests: the gateway's
// defaults (config/redis.go).
func failoverOptions(o Options) Options {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = time.Second, 200*time.Millisecond, 200*time.Millisecond
	return o
}

// TestClusterClientFollowsFailover proves that a client given one seed of
// a 3-master/3-replica Redis Cluster reaches keys on every master, and,
// after the master holding a key is killed, reaches the key (replicated
// before the kill) on the replica the cluster promotes.
func TestClusterClientFollowsFailover(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	c := New(failoverOptions(Options{ClusterNodes: cl.Addrs()[:1]}))
	defer c.Close()
	cc, ok := c.UniversalClient.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client is a %T, want a *redis.ClusterClient", c.UniversalClient)
	}
	ctx := context.Background()
	masters := map[string]bool{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("keys landed on %d masters, want 3", len(masters))
	}
	m, _ := cc.MasterForKey(ctx, "a")
	if n, err := m.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d, %v", n, err)
	}
	victim := cl.Node(m.Options().Addr)
	t.Logf("killing master %s", victim)
	victim.Kill()
	defer func() {
		if !t.Failed() {
			return
		}
		out, _ := cl.Nodes[0].Command("cluster", "nodes")
		if cl.Nodes[0] == victim {
			out, _ = cl.Nodes[1].Command("cluster", "nodes")
		}
		t.Logf("cluster nodes:\n%s", out)
	}()
	failed, took := retryUntil(t, 30*time.Second, func(ctx context.Context) error {
		v, err := c.Get(ctx, "a").Result()
		if err == nil && v != "a" {
			return errors.New("a = " + v)
		}
		return err
	})
	t.Logf("GET a answered again after %s and %d failed calls (100ms deadline each)", took, failed)
	if m2, _ := cc.MasterForKey(ctx, "a"); m2.Options().Addr == victim.Addr {
		t.Errorf("master for a is still %s", victim.Addr)
	}
}

// TestSentinelClientFollowsFailover proves that a client given three
// Sentinels reaches their master and, once the master is killed and the
// Sentinels promote its replica, the new master.
func TestSentinelClientFollowsFailover(t *testing.T) {
	st := redistest.StartSentinel(t, 1, 3)
	c := New(failoverOptions(Options{SentinelMaster: st.Name, SentinelNodes: st.Addrs()}))
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "a", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, "WAIT", 1, 1000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d, %v", n, err)
	}
	old := st.MasterAddr()
	t.Logf("killing master %s", st.Server(old))
	st.Server(old).Kill()
	failed, took := retryUntil(t, 30*time.Second, func(ctx context.Context) error {
		return c.Set(ctx, "b", "b", 0).Err() // a write: only a master takes it
	})
	t.Logf("SET answered again after %s and %d failed calls (100ms deadline each)", took, failed)
	if now := st.MasterAddr(); now == old || now == "" {
		t.Errorf("Sentinels name %q as master, want the promoted replica", now)
	}
	if v, err := c.Get(ctx, "a").Result(); err != nil || v != "a" {
		t.Errorf("GET a on the new master: %q, %v", v, err)
	}
}

// retryUntil calls call (100ms deadline each, 50ms apart) until it
// succeeds, failing the test after timeout. It returns the failed calls and
// the time taken.
func retryUntil(t *testing.T, timeout time.Duration, call func(ctx context.Context) error) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	failed := 0
	var last error
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := call(ctx)
		cancel()
		last = err
		if err == nil {
			return failed, time.Since(start).Round(time.Millisecond)
		}
		failed++
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no success within %s (%d failed calls, the last: %v)", timeout, failed, last)
	return failed, 0
}
