// Package ratelimit is the RequestRateLimiter filter: a token bucket per key
// (client IP, a header, a path variable or the authenticated user), kept in
// Redis with Spring Cloud Gateway's atomic script when several gateways must
// share it, or in memory.
package ratelimit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/redisconn"
)

// Response headers, as Spring Cloud Gateway names them.
const (
	HeaderRemaining   = "X-RateLimit-Remaining"
	HeaderReplenish   = "X-RateLimit-Replenish-Rate"
	HeaderBurst       = "X-RateLimit-Burst-Capacity"
	HeaderRequested   = "X-RateLimit-Requested-Tokens"
	ReasonLimited     = "rate_limited"
	ReasonEmptyKey    = "rate_limit_empty_key"
	ReasonUnavailable = "rate_limiter_unavailable"
)

// A Limiter takes requested tokens from the bucket of key. remaining is
// what is left (-1 when unknown). err means the limiter could not decide.
type Limiter interface {
	Allow(r *http.Request, key string, requested int) (allowed bool, remaining int64, err error)
}

// Options configure a RequestRateLimiter filter.
type Options struct {
	ReplenishRate   int // tokens per second
	BurstCapacity   int // bucket size
	RequestedTokens int
	Key             KeyResolver
	DenyEmptyKey    bool
	EmptyKeyStatus  int
	Status          int  // answer when limited; 429
	IncludeHeaders  bool // X-RateLimit-* on responses
	// DenyOnError refuses requests (503) when the limiter cannot decide
	// (Redis down or slow); by default they are allowed, as Spring does.
	DenyOnError bool
}

// aliases lists, for each argument, the spellings accepted: Spring's
// (expanded and relaxed) and snake_case. The first is the canonical name.
var aliases = [][]string{
	{"redis-rate-limiter.replenishRate", "redis-rate-limiter.replenish-rate", "replenish_rate", "replenishRate"},
	{"redis-rate-limiter.burstCapacity", "redis-rate-limiter.burst-capacity", "burst_capacity", "burstCapacity"},
	{"redis-rate-limiter.requestedTokens", "redis-rate-limiter.requested-tokens", "requested_tokens", "requestedTokens"},
	{"key-resolver", "key_resolver", "keyResolver"},
	{"deny-empty-key", "deny_empty_key", "denyEmptyKey"},
	{"empty-key-status-code", "empty_key_status_code", "emptyKeyStatus", "empty-key-status"},
	{"status-code", "status_code", "statusCode"},
	{"include-headers", "include_headers", "includeHeaders", "redis-rate-limiter.include-headers", "redis-rate-limiter.includeHeaders"},
	{"limiter"},
	{"redis_unavailable", "redis-unavailable"},
	{"timeout"},
	{"max_concurrency", "max-concurrency"},
}

// Factory builds RequestRateLimiter filters. The shortcut is
// RequestRateLimiter=REPLENISH_RATE,BURST_CAPACITY,KEY_RESOLVER.
var Factory = filter.Factory{Fields: fields(), New: newFilter}

func fields() []string {
	out := []string{"replenish_rate", "burst_capacity", "key_resolver"}
	for _, as := range aliases {
		for _, a := range as {
			if a != "replenish_rate" && a != "burst_capacity" && a != "key_resolver" {
				out = append(out, a)
			}
		}
	}
	return out
}

// canonical folds the spellings of every argument into its first name.
func canonical(a args.Args) (args.Args, error) {
	out := args.Args{}
	for _, as := range aliases {
		var given string
		for _, name := range as {
			if !a.Has(name) {
				continue
			}
			if given != "" {
				return nil, fmt.Errorf("%s and %s are the same argument: give one", given, name)
			}
			given = name
			out[as[0]] = a[name]
		}
	}
	return out, nil
}

func newFilter(raw args.Args, env *filter.Env) (filter.Filter, error) {
	a, err := canonical(raw)
	if err != nil {
		return nil, err
	}
	var o Options
	ints := []struct {
		name string
		dst  *int
		def  int
	}{
		{"redis-rate-limiter.replenishRate", &o.ReplenishRate, 1},
		{"redis-rate-limiter.burstCapacity", &o.BurstCapacity, 1},
		{"redis-rate-limiter.requestedTokens", &o.RequestedTokens, 1},
		{"empty-key-status-code", &o.EmptyKeyStatus, http.StatusForbidden},
		{"status-code", &o.Status, http.StatusTooManyRequests},
	}
	for _, n := range ints {
		if *n.dst, err = a.Int(n.name, n.def); err != nil {
			return nil, err
		}
	}
	if o.DenyEmptyKey, err = a.Bool("deny-empty-key", true); err != nil {
		return nil, err
	}
	if o.IncludeHeaders, err = a.Bool("include-headers", true); err != nil {
		return nil, err
	}
	switch {
	case o.ReplenishRate < 1:
		return nil, errors.New("replenishRate: must be at least 1 (use requestedTokens for slower rates)")
	case o.BurstCapacity < 1:
		return nil, errors.New("burstCapacity: must be at least 1")
	case o.RequestedTokens < 1:
		return nil, errors.New("requestedTokens: must be at least 1")
	case o.BurstCapacity < o.ReplenishRate:
		// Spring's rule: a bucket smaller than one second of tokens is a misconfiguration.
		return nil, fmt.Errorf("burstCapacity (%d) must be at least replenishRate (%d)", o.BurstCapacity, o.ReplenishRate)
	case o.EmptyKeyStatus < 100 || o.EmptyKeyStatus > 599 || o.Status < 100 || o.Status > 599:
		return nil, errors.New("status codes must be between 100 and 599")
	}
	ks, _ := a.String("key-resolver", "client_ip")
	if o.Key, err = ParseKeyResolver(ks); err != nil {
		return nil, err
	}
	onErr, err := a.String("redis_unavailable", "allow")
	if err != nil {
		return nil, err
	}
	switch onErr {
	case "allow":
	case "deny":
		o.DenyOnError = true
	default:
		return nil, fmt.Errorf("redis_unavailable: %q is not allow or deny", onErr)
	}
	kind, _ := a.String("limiter", "")
	if kind == "" {
		kind = "local"
		if env.Redis != nil {
			kind = "redis"
		}
	}
	var lim Limiter
	switch kind {
	case "local":
		lim = NewLocal(o.ReplenishRate, o.BurstCapacity)
	case "redis":
		if env.Redis == nil {
			return nil, errors.New("limiter: redis needs a top-level redis block")
		}
		var g redisconn.GuardOptions
		if g.Timeout, err = a.Duration("timeout", 100*time.Millisecond); err != nil {
			return nil, err
		}
		if g.MaxConcurrency, err = a.Int("max_concurrency", 256); err != nil {
			return nil, err
		}
		if g.Timeout <= 0 || g.MaxConcurrency < 1 {
			return nil, errors.New("timeout and max_concurrency must be greater than 0")
		}
		lim = NewRedis(env.Redis, redisconn.NewGuard(g, env.Redis.Stats), env.RouteID, o.ReplenishRate, o.BurstCapacity)
	default:
		return nil, fmt.Errorf("limiter: %q is not local or redis", kind)
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	return New(o, lim, log.With("filter", "RequestRateLimiter", "route", env.RouteID)), nil
}

// Filter is a RequestRateLimiter filter.
type Filter struct {
	o   Options
	lim Limiter
	log *slog.Logger

	replenish, burst, requested string
}

// New returns a filter that asks lim.
func New(o Options, lim Limiter, log *slog.Logger) *Filter {
	return &Filter{o: o, lim: lim, log: log,
		replenish: strconv.Itoa(o.ReplenishRate), burst: strconv.Itoa(o.BurstCapacity), requested: strconv.Itoa(o.RequestedTokens)}
}

// RoundTrip implements filter.Filter.
func (f *Filter) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	key := f.o.Key.Key(r)
	if key == "" {
		if f.o.DenyEmptyKey {
			return f.answer(r, f.o.EmptyKeyStatus, ReasonEmptyKey, nil), nil
		}
		return next.RoundTrip(r)
	}
	allowed, remaining, err := f.lim.Allow(r, key, f.o.RequestedTokens)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: err}
		}
		if f.o.DenyOnError {
			return nil, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Err: err}
		}
		f.log.Debug("rate limiter unavailable, allowing", "error", err)
		allowed, remaining = true, -1
	}
	if !allowed {
		return f.answer(r, f.o.Status, ReasonLimited, f.headers(remaining)), nil
	}
	resp, err := next.RoundTrip(r)
	if err == nil && f.o.IncludeHeaders {
		for k, v := range f.headers(remaining) {
			resp.Header[k] = v
		}
	}
	return resp, err
}

func (f *Filter) headers(remaining int64) http.Header {
	if !f.o.IncludeHeaders {
		return nil
	}
	return http.Header{
		HeaderRemaining: {strconv.FormatInt(remaining, 10)},
		HeaderReplenish: {f.replenish},
		HeaderBurst:     {f.burst},
		HeaderRequested: {f.requested},
	}
}

// answer is the gateway's own response, with an empty body as Spring's.
func (f *Filter) answer(r *http.Request, status int, reason string, h http.Header) *http.Response {
	if ex := exchange.From(r.Context()); ex != nil {
		ex.Reason = reason
	}
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", "0")
	return &http.Response{
		StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader("")), ContentLength: 0, Request: r,
	}
}
