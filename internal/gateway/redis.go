package gateway

import (
	"reflect"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/redisconn"
)

// redisClient returns the Redis client for cfg's redis block: prev's when
// the settings did not change (its connections and counters survive the
// reload), a new one otherwise, nil without a redis block. It does not
// connect.
func redisClient(cfg *config.Config, prev *Runtime) (*redisconn.Client, *config.Error) {
	r := cfg.Redis
	if r == nil {
		return nil, nil
	}
	if prev != nil && prev.Redis != nil && prev.Config != nil && prev.Config.Redis != nil && reflect.DeepEqual(*prev.Config.Redis, *r) {
		return prev.Redis, nil
	}
	o := redisconn.Options{
		Addr: r.Address, Username: r.Username, Password: r.Password, DB: r.DB, PoolSize: r.PoolSize,
		DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout,
		ClusterNodes: r.Cluster.Nodes, MaxRedirects: r.Cluster.MaxRedirects,
		SentinelMaster: r.Sentinel.Master, SentinelNodes: r.Sentinel.Nodes,
		SentinelUsername: r.Sentinel.Username, SentinelPassword: r.Sentinel.Password,
	}
	if r.TLS.Enabled {
		t, err := redisconn.LoadTLS(r.TLS.CAFile, r.TLS.ServerName, r.TLS.InsecureSkipVerify)
		if err != nil {
			return nil, cfg.Errorf(config.Pos{Line: 1, Col: 1}, "redis.tls", "%v", err)
		}
		o.TLS = t
	}
	return redisconn.New(o), nil
}

// withRedis gives e the shared Redis client.
func withRedis(e *filter.Env, c *redisconn.Client) *filter.Env {
	e.Redis = c
	return e
}
