// Package tokenauth is the TokenAuth filter: an opaque token, read from a
// header or cookie, is looked up in Redis; its value names the user and
// carries claims, which become request headers.
//
// The filter is built so that a slow or absent Redis cannot hurt anything but
// the requests that need it: every lookup has a strict deadline, at most
// max_concurrency run at once (more are answered at once, not queued), and
// a circuit breaker stops calling a Redis that keeps failing. Such requests
// get 503 (fail-closed, the default) or pass without identity headers
// (fail_open: true). Sliding expiration happens off the request path, in one
// bounded background worker.
package tokenauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/filter/authn"
	"github.com/sluice-gw/sluice/internal/redisconn"
)

// Factory builds TokenAuth filters. Its shortcut is TokenAuth=KEY_PREFIX.
var Factory = filter.Factory{
	Fields: []string{"key_prefix", "header", "scheme", "cookie", "user_id_field", "claims_field", "user_header",
		"claim_headers", "allow", "sliding_ttl", "refresh_below", "refresh_queue", "timeout", "max_concurrency",
		"fail_open", "circuit_failures", "circuit_open_for"},
	New: newFilter,
}

// Options configure a TokenAuth filter.
type Options struct {
	KeyPrefix    string // the Redis key of a token is KeyPrefix+token
	Source       authn.Source
	UserIDField  string // field of the stored JSON holding the user id
	ClaimsField  string // field of the stored JSON holding the claims object
	UserHeader   string // request header that receives the user id
	ClaimHeaders []authn.Mapping
	Allow        authn.AllowList
	// SlidingTTL, when > 0, is the TTL a token gets back when it is used
	// with less than RefreshBelow left.
	SlidingTTL   time.Duration
	RefreshBelow time.Duration
	RefreshQueue int // tokens waiting for their TTL to be extended; more are dropped
	Guard        redisconn.GuardOptions
	FailOpen     bool
}

func newFilter(a args.Args, env *filter.Env) (filter.Filter, error) {
	if env.Redis == nil {
		return nil, errors.New("needs Redis: add a top-level redis block (address, password, ...)")
	}
	var o Options
	var err error
	str := func(name, def string) string {
		v, e := a.String(name, def)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	dur := func(name string, def time.Duration) time.Duration {
		v, e := a.Duration(name, def)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	num := func(name string, def int) int {
		v, e := a.Int(name, def)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	o.KeyPrefix = str("key_prefix", "token:")
	o.UserIDField = str("user_id_field", "user_id")
	o.ClaimsField = str("claims_field", "claims")
	o.UserHeader = http.CanonicalHeaderKey(str("user_header", "X-User-Id"))
	o.SlidingTTL = dur("sliding_ttl", 4*time.Hour)
	o.RefreshBelow = dur("refresh_below", 0)
	o.RefreshQueue = num("refresh_queue", 4096)
	o.Guard.Timeout = dur("timeout", 100*time.Millisecond)
	o.Guard.MaxConcurrency = num("max_concurrency", 256)
	o.Guard.Failures = num("circuit_failures", 5)
	o.Guard.OpenFor = dur("circuit_open_for", time.Second)
	if err != nil {
		return nil, err
	}
	if o.FailOpen, err = a.Bool("fail_open", false); err != nil {
		return nil, err
	}
	if o.Source, err = authn.SourceArgs(a); err != nil {
		return nil, err
	}
	if o.ClaimHeaders, err = authn.ParseMappings(a.Strings("claim_headers")); err != nil {
		return nil, err
	}
	if o.Allow, err = authn.NewAllowList(a.Strings("allow")); err != nil {
		return nil, err
	}
	if o.RefreshBelow == 0 {
		o.RefreshBelow = o.SlidingTTL / 2
	}
	switch {
	case o.SlidingTTL > 0 && o.RefreshBelow > o.SlidingTTL:
		return nil, fmt.Errorf("refresh_below (%s) must not exceed sliding_ttl (%s)", o.RefreshBelow, o.SlidingTTL)
	case o.RefreshQueue < 1:
		return nil, errors.New("refresh_queue: must be at least 1")
	case o.Guard.Timeout <= 0 || o.Guard.MaxConcurrency < 1 || o.Guard.Failures < 1 || o.Guard.OpenFor <= 0:
		return nil, errors.New("timeout, max_concurrency, circuit_failures and circuit_open_for must be greater than 0")
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	return New(o, env.Redis, log.With("filter", "TokenAuth", "route", env.RouteID)), nil
}

// Filter is a TokenAuth filter.
type Filter struct {
	o       Options
	client  *redisconn.Client
	guard   *redisconn.Guard
	strip   []string
	refresh *refresher
	log     *slog.Logger
}

// New returns a TokenAuth filter on client.
func New(o Options, client *redisconn.Client, log *slog.Logger) *Filter {
	f := &Filter{
		o:      o,
		client: client,
		guard:  redisconn.NewGuard(o.Guard, client.Stats),
		strip:  authn.Headers(o.ClaimHeaders, o.UserHeader),
		log:    log,
	}
	if o.SlidingTTL > 0 {
		f.refresh = newRefresher(client, f.guard, o.SlidingTTL, o.RefreshQueue, log)
	}
	return f
}

// maxToken is the longest token looked up; longer ones are invalid without
// a Redis call.
const maxToken = 4096

// A session is the stored value of a token.
type session struct {
	userID string
	claims map[string]any
}

// RoundTrip implements filter.Filter.
func (f *Filter) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	authn.Strip(r.Header, f.strip) // always, allow-listed or not
	if f.o.Allow.Match(r.URL.Path) {
		return next.RoundTrip(r)
	}
	token := f.o.Source.Token(r)
	if token == "" {
		return nil, authn.Unauthorized(authn.ReasonMissing, errors.New("no token"))
	}
	if len(token) > maxToken {
		return nil, authn.Unauthorized(authn.ReasonInvalid, errors.New("token too long"))
	}
	key := f.o.KeyPrefix + token
	var get *redis.StringCmd
	var ttl *redis.DurationCmd
	err := f.guard.Do(r.Context(), func(ctx context.Context) error {
		pipe := f.client.Pipeline()
		get = pipe.Get(ctx, key)
		ttl = pipe.PTTL(ctx, key)
		_, err := pipe.Exec(ctx)
		return err
	})
	switch {
	case errors.Is(err, redis.Nil) || err == nil && get.Err() == redis.Nil:
		return nil, authn.Unauthorized(authn.ReasonInvalid, errors.New("unknown token"))
	case err != nil:
		if r.Context().Err() != nil {
			return nil, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: err}
		}
		if f.o.FailOpen {
			f.log.Debug("Redis unavailable, passing without identity (fail_open)", "error", err)
			return next.RoundTrip(r)
		}
		return nil, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: authn.ReasonUnavailable, Err: err}
	}
	s, err := f.decode(get.Val())
	if err != nil {
		return nil, authn.Unauthorized(authn.ReasonInvalid, err)
	}
	r.Header[f.o.UserHeader] = []string{s.userID}
	for _, m := range f.o.ClaimHeaders {
		if v, ok := authn.Value(s.claims[m.Claim]); ok {
			r.Header[m.Header] = []string{v}
		}
	}
	// PTTL is -1 for a key without expiry (left alone) and -2 for a key
	// that vanished since GET.
	if f.refresh != nil && ttl.Val() >= 0 && ttl.Val() < f.o.RefreshBelow {
		f.refresh.enqueue(key)
	}
	return next.RoundTrip(r)
}

func (f *Filter) decode(v string) (session, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return session{}, fmt.Errorf("stored value is not a JSON object: %w", err)
	}
	id, ok := authn.Value(m[f.o.UserIDField])
	if !ok || id == "" {
		return session{}, fmt.Errorf("stored value has no %q", f.o.UserIDField)
	}
	claims, _ := m[f.o.ClaimsField].(map[string]any)
	return session{userID: id, claims: claims}, nil
}
