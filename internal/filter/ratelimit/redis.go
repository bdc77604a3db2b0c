package ratelimit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/redisconn"
)

// script is Spring Cloud Gateway's request_rate_limiter.lua: one atomic
// step of a token bucket kept in two keys (tokens, last refill time). Time
// is Redis's own, in whole seconds, so every gateway sharing the Redis
// agrees on it. Returns {allowed (0|1), tokens left}.
var script = redis.NewScript(`
if redis.replicate_commands then pcall(redis.replicate_commands) end
local tokens_key = KEYS[1]
local timestamp_key = KEYS[2]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
local requested = tonumber(ARGV[4])

local fill_time = capacity/rate
local ttl = math.floor(fill_time*2)

local last_tokens = tonumber(redis.call("get", tokens_key))
if last_tokens == nil then
  last_tokens = capacity
end
local last_refreshed = tonumber(redis.call("get", timestamp_key))
if last_refreshed == nil then
  last_refreshed = 0
end

local delta = math.max(0, now-last_refreshed)
local filled_tokens = math.min(capacity, last_tokens+(delta*rate))
local allowed = filled_tokens >= requested
local new_tokens = filled_tokens
local allowed_num = 0
if allowed then
  new_tokens = filled_tokens - requested
  allowed_num = 1
end

if ttl > 0 then
  redis.call("setex", tokens_key, ttl, new_tokens)
  redis.call("setex", timestamp_key, ttl, now)
end

return { allowed_num, new_tokens }
`)

// Redis is the token bucket in Redis, shared by every gateway using the same
// Redis. Keys are request_rate_limiter.{ROUTE.KEY}.tokens and .timestamp
// (Spring's, with the route id added so routes do not share buckets; the
// braces keep both keys in one Redis Cluster slot).
type Redis struct {
	client          *redisconn.Client
	guard           *redisconn.Guard
	route           string
	rate, capacity  string
	rateNum, capNum int
}

// NewRedis returns a Redis limiter for one route.
func NewRedis(c *redisconn.Client, g *redisconn.Guard, route string, rate, capacity int) *Redis {
	return &Redis{client: c, guard: g, route: route, rate: fmt.Sprint(rate), capacity: fmt.Sprint(capacity), rateNum: rate, capNum: capacity}
}

// Allow implements Limiter.
func (l *Redis) Allow(r *http.Request, key string, requested int) (bool, int64, error) {
	prefix := "request_rate_limiter.{" + l.route + "." + key
	keys := []string{prefix + "}.tokens", prefix + "}.timestamp"}
	var res []any
	err := l.guard.Do(r.Context(), func(ctx context.Context) error {
		var err error
		res, err = script.Run(ctx, l.client, keys, l.rate, l.capacity, "", requested).Slice()
		return err
	})
	if err != nil {
		return false, -1, err
	}
	if len(res) != 2 {
		return false, -1, fmt.Errorf("rate limiter script returned %v", res)
	}
	allowed, _ := res[0].(int64)
	left, _ := res[1].(int64)
	return allowed == 1, left, nil
}
