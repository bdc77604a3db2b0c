package config

import "time"

// Redis configures the one Redis connection that every Redis-backed filter
// (TokenAuth, RequestRateLimiter with limiter: redis) shares. Nil when the
// file has no redis block.
type Redis struct {
	Address      string        `yaml:"address"` // host:port
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	DB           int           `yaml:"db"`
	TLS          RedisTLS      `yaml:"tls"`
	PoolSize     int           `yaml:"pool_size"` // 0 = 10 per CPU
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"` // "" = system roots
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
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
}
