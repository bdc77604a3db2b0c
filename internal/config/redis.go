package config

import (
	"fmt"
	"time"
)

// Redis configures the one Redis connection that every Redis-backed filter
// (TokenAuth, RequestRateLimiter with limiter: redis) shares. Nil when the
// file has no redis block. It reaches one server (address), a Redis Cluster
// (cluster.nodes) or the master a set of Sentinels names (sentinel.master
// and sentinel.nodes); the last two replace address.
type Redis struct {
	Address      string        `yaml:"address"` // host:port
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	DB           int           `yaml:"db"`
	TLS          RedisTLS      `yaml:"tls"`
	PoolSize     int           `yaml:"pool_size"` // 0 = 10 per CPU (per node in a cluster)
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	Cluster      RedisCluster  `yaml:"cluster"`
	Sentinel     RedisSentinel `yaml:"sentinel"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"` // "" = system roots
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// RedisCluster reaches a Redis Cluster: nodes are seeds (any subset of the
// cluster's nodes); the client learns the rest and follows MOVED and ASK.
type RedisCluster struct {
	Nodes        []string `yaml:"nodes"`         // host:port
	MaxRedirects int      `yaml:"max_redirects"` // MOVED/ASK/retries per call; 0 = 3
}

// RedisSentinel reaches the master that Sentinels name, and follows it
// when they fail it over. Username and password are the Sentinels' own
// (the top-level ones are the data nodes').
type RedisSentinel struct {
	Master   string   `yaml:"master"`
	Nodes    []string `yaml:"nodes"` // host:port of the Sentinels
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
}

func (r *Redis) setDefaults() {
	r.Address = "127.0.0.1:6379"
	r.DialTimeout = time.Second
	r.ReadTimeout = 200 * time.Millisecond
	r.WriteTimeout = 200 * time.Millisecond
}

func (d *decoder) checkRedis(r *Redis) {
	if r == nil {
		return
	}
	if _, _, err := splitHostPort(r.Address, false); err != nil {
		d.invalid("redis.address", "%q is not a valid address: %v", r.Address, err)
	}
	d.between("redis.db", r.DB, 0, 15)
	d.atLeast("redis.pool_size", r.PoolSize, 0)
	d.positive("redis.dial_timeout", int64(r.DialTimeout))
	d.positive("redis.read_timeout", int64(r.ReadTimeout))
	d.positive("redis.write_timeout", int64(r.WriteTimeout))
	if r.TLS.Enabled {
		d.checkFiles("redis.tls", map[string]string{"ca_file": r.TLS.CAFile})
	} else if r.TLS.CAFile != "" || r.TLS.ServerName != "" || r.TLS.InsecureSkipVerify {
		d.invalid("redis.tls", "set enabled: true to use ca_file, server_name or insecure_skip_verify")
	}
	d.checkRedisTopology(r)
}

// checkRedisTopology checks that at most one of address, cluster and
// sentinel is chosen, and the chosen one completely.
func (d *decoder) checkRedisTopology(r *Redis) {
	cluster := d.written("redis.cluster")
	sentinel := d.written("redis.sentinel")
	switch {
	case cluster && sentinel:
		d.invalid("redis.sentinel", "set cluster or sentinel, not both (cluster at line %d)", d.pos("redis.cluster").Line)
		return
	case (cluster || sentinel) && d.written("redis.address"):
		other := map[bool]string{true: "cluster.nodes", false: "sentinel.nodes"}[cluster]
		d.invalid("redis.address", "remove it: %s lists the nodes to connect to", other)
	}
	if cluster {
		d.redisNodes("redis.cluster", r.Cluster.Nodes)
		d.atLeast("redis.cluster.max_redirects", r.Cluster.MaxRedirects, 0)
		if r.DB != 0 {
			d.invalid("redis.db", "must be 0 with cluster: Redis Cluster has only database 0")
		}
	}
	if sentinel {
		if r.Sentinel.Master == "" {
			d.missing(d.pos("redis.sentinel"), "redis.sentinel", "master", "must name the master the Sentinels monitor")
		}
		d.redisNodes("redis.sentinel", r.Sentinel.Nodes)
	}
}

// redisNodes checks the nodes list of the block at parent: host:port each.
func (d *decoder) redisNodes(parent string, nodes []string) {
	if len(nodes) == 0 {
		d.missing(d.pos(parent), parent, "nodes", "must list at least one host:port")
		return
	}
	for i, n := range nodes {
		if _, _, err := splitHostPort(n, false); err != nil {
			d.invalid(fmt.Sprintf("%s.nodes[%d]", parent, i), "%q is not a valid address: %v", n, err)
		}
	}
}
