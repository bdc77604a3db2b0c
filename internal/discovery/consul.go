package discovery

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Consul follows the instances of one service registered in Consul, as
// Spring Cloud Consul's discovery client does (spring.cloud.consul.*), with
// HashiCorp's own client (github.com/hashicorp/consul/api).
//
// It asks the health endpoint for the instances whose checks all pass
// (GET /v1/health/service/NAME?passing), and follows it with blocking
// queries: each query waits at Consul until the answer changes (its index
// moves past the last one) or Wait passes. An instance whose check fails,
// or that is put in maintenance or deregistered, leaves the answer; the
// cluster then drains it (no new requests, idle connections closed,
// requests in flight finish). While Consul does not answer, the last set
// stays, and queries are retried with a growing pause up to MaxBackoff.
type Consul struct {
	Client     *api.Client
	Service    string
	Tag        string        // only instances with this tag (default-query-tag); "" = all
	Datacenter string        // "" = the agent's
	Wait       time.Duration // blocking query wait; default 5m
	MaxBackoff time.Duration // default 30s
	Log        *slog.Logger
	Stats      *Stats
}

func (c *Consul) stats() *Stats { return c.Stats }

// Run follows the service until ctx ends.
func (c *Consul) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	wait, maxBackoff := c.Wait, c.MaxBackoff
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	if maxBackoff <= 0 {
		maxBackoff = 30 * time.Second
	}
	out := &dedup{publish: publish, stats: c.Stats}
	var index uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait, Datacenter: c.Datacenter}).WithContext(ctx)
		start := time.Now()
		entries, meta, err := c.Client.Health().Service(c.Service, c.Tag, true, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.Stats.fail(log, err)
			index = 0 // the next answer may come from another server
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		c.Stats.ok(log)
		out.send(ConsulSpecs(entries))
		// Consul's rules for blocking queries: an index that goes back
		// means start over; 0 is never waited on; and answers that come
		// back at once are spaced out.
		switch next := meta.LastIndex; {
		case next < index || next == 0:
			index = 0
		default:
			index = next
		}
		if time.Since(start) < 50*time.Millisecond && !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// ConsulSpecs maps passing service entries to endpoints: the service's
// address (else its node's) and port, weighted by Weights.Passing.
func ConsulSpecs(entries []*api.ServiceEntry) []endpoint.Spec {
	seen := map[string]bool{}
	specs := make([]endpoint.Spec, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		addr, ok := instanceAddr(host, e.Service.Port)
		if !ok || seen[addr] {
			continue
		}
		seen[addr] = true
		w := e.Service.Weights.Passing
		if w <= 0 {
			w = 1
		}
		specs = append(specs, endpoint.Spec{Addr: addr, Weight: w})
	}
	sortSpecs(specs)
	return specs
}

// NewConsulClient makes a Consul client for address (host:port, or
// http(s)://host:port) with an ACL token.
func NewConsulClient(address, token string) (*api.Client, error) {
	u, err := serverURL(address, 8500)
	if err != nil {
		return nil, err
	}
	cfg := api.DefaultConfig()
	cfg.Address = net.JoinHostPort(u.Hostname(), u.Port())
	cfg.Scheme = u.Scheme
	cfg.Token = token
	return api.NewClient(cfg)
}
