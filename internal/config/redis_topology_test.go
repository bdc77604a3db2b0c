package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRedisClusterAndSentinel(t *testing.T) {
	defaults := func(r Redis) *Redis {
		r.Address = "127.0.0.1:6379"
		r.DialTimeout, r.ReadTimeout, r.WriteTimeout = time.Second, 200*time.Millisecond, 200*time.Millisecond
		return &r
	}
	tests := []struct {
		desc string
		yaml string
		want *Redis
	}{
		{desc: "cluster seeds", yaml: "redis: {cluster: {nodes: [10.0.0.1:7000, 10.0.0.2:7000], max_redirects: 5}}",
			want: defaults(Redis{Cluster: RedisCluster{Nodes: []string{"10.0.0.1:7000", "10.0.0.2:7000"}, MaxRedirects: 5}})},
		{desc: "sentinel", yaml: "redis: {password: data, sentinel: {master: mymaster, nodes: ['[::1]:26379', 'sentinel-2:26379'], password: sent}}",
			want: defaults(Redis{Password: "data", Sentinel: RedisSentinel{Master: "mymaster", Nodes: []string{"[::1]:26379", "sentinel-2:26379"}, Password: "sent"}})},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			diff(t, c.Redis, tc.want)
		})
	}
}

func TestParseRedisTopologyErrors(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{desc: "cluster and sentinel", yaml: "redis:\n  cluster: {nodes: [a:1]}\n  sentinel: {master: m, nodes: [b:2]}\n",
			want: []string{`sluice.yaml:3:13: redis.sentinel: set cluster or sentinel, not both (cluster at line 2)`}},
		{desc: "address with cluster", yaml: "redis:\n  address: a:1\n  cluster: {nodes: [a:1]}\n",
			want: []string{`sluice.yaml:2:12: redis.address: remove it: cluster.nodes lists the nodes to connect to`}},
		{desc: "address with sentinel", yaml: "redis:\n  address: a:1\n  sentinel: {master: m, nodes: [a:1]}\n",
			want: []string{`sluice.yaml:2:12: redis.address: remove it: sentinel.nodes lists the nodes to connect to`}},
		{desc: "cluster without nodes, a bad node, a db", yaml: "redis:\n  db: 3\n  cluster: {max_redirects: -1}\n",
			want: []string{
				`sluice.yaml:2:7: redis.db: must be 0 with cluster: Redis Cluster has only database 0`,
				`sluice.yaml:3:12: redis.cluster: missing required key "nodes"`,
				`sluice.yaml:3:28: redis.cluster.max_redirects: must be at least 0, got -1`,
			}},
		{desc: "an empty list of nodes", yaml: "redis:\n  cluster: {nodes: []}\n",
			want: []string{`sluice.yaml:2:20: redis.cluster.nodes: must list at least one host:port`}},
		{desc: "sentinel without master, a node without port", yaml: "redis:\n  sentinel: {nodes: [s1:26379, s2]}\n",
			want: []string{
				`sluice.yaml:2:13: redis.sentinel: missing required key "master"`,
				`sluice.yaml:2:32: redis.sentinel.nodes[1]: "s2" is not a valid address: missing port in address`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
