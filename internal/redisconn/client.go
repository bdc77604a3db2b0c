// Package redisconn owns Sluice's one connection to Redis: the go-redis
// client every Redis-backed filter shares, its counters (read by package
// metrics at scrape time), and Guard, which keeps a filter's Redis calls
// short, bounded in number and away from a Redis that is down.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options are the connection settings (the config's redis block). Addr
// names one server; ClusterNodes (a Redis Cluster) or SentinelMaster with
// SentinelNodes (a master that Sentinels fail over) replace it.
type Options struct {
	Addr         string // host:port
	Username     string
	Password     string
	DB           int
	TLS          *tls.Config // nil: plain text
	PoolSize     int         // 0: go-redis's default (10 per CPU, per node)
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration

	ClusterNodes []string // seeds of a Redis Cluster
	MaxRedirects int      // cluster: MOVED/ASK/retries per call; 0: 3

	SentinelMaster   string   // the master's name in the Sentinels
	SentinelNodes    []string // host:port of the Sentinels
	SentinelUsername string
	SentinelPassword string
}

// Client is the shared Redis client with its statistics. It is safe for
// concurrent use; callers bound each call with a context deadline, which the
// client honours on dial, read and write.
type Client struct {
	redis.UniversalClient
	Stats *Stats
}

// New returns a client for o: a single-node, cluster or Sentinel client
// (go-redis's), all behind one UniversalClient. It does not connect:
// connections are made on first use, so a Redis that is down does not stop
// the gateway from starting.
func New(o Options) *Client {
	quietOnce.Do(func() { redis.SetLogger(debugLogger{}) })
	u := &redis.UniversalOptions{
		Addrs:                 []string{o.Addr},
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		TLSConfig:             o.TLS,
		PoolSize:              o.PoolSize,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: true, // a call's deadline bounds its reads and writes
		MaxRetries:            -1,   // callers decide; a retry would outlive their timeout
		// A pool wait longer than a read makes no sense on the request path.
		PoolTimeout:     o.ReadTimeout + o.DialTimeout,
		DisableIdentity: true, // no CLIENT SETINFO round trip on every new connection
		DialerRetries:   1,    // one dial per attempt: a down Redis must fail fast
	}
	s := &Stats{}
	var c redis.UniversalClient
	switch {
	case o.SentinelMaster != "":
		// The client asks the Sentinels for the master and follows their
		// +switch-master announcements.
		u.Addrs, u.MasterName = o.SentinelNodes, o.SentinelMaster
		u.SentinelUsername, u.SentinelPassword = o.SentinelUsername, o.SentinelPassword
		c = redis.NewUniversalClient(u)
	case len(o.ClusterNodes) > 0:
		u.Addrs, u.MaxRedirects = o.ClusterNodes, o.MaxRedirects
		co := u.Cluster()
		// go-redis re-reads the slot map only on MOVED, READONLY or every
		// ClusterStateReloadInterval (60s by default): a dead master would
		// keep its slots that long. The hook below re-reads it on every
		// connection failure; this interval is the fallback.
		co.ClusterStateReloadInterval = 5 * time.Second
		cc := redis.NewClusterClient(co)
		s.reload = func() { cc.ReloadState(context.Background()) }
		c = cc
	default:
		c = redis.NewUniversalClient(u)
	}
	c.AddHook(hook{s})
	return &Client{UniversalClient: c, Stats: s}
}

var quietOnce sync.Once

// debugLogger sends go-redis's own log lines (dial failures, one per
// attempt while Redis is down) to slog at debug level; Stats counts them.
type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// LoadTLS builds the TLS config of a Redis connection: caFile ("" = system
// roots), serverName and insecure as in crypto/tls.
func LoadTLS(caFile, serverName string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = newPool(pem)
		if c.RootCAs == nil {
			return nil, errors.New("redis.tls.ca_file " + caFile + ": no PEM certificate found")
		}
	}
	return c, nil
}

// Buckets are the upper bounds, in seconds, of the command latency histogram.
var Buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// Error kinds counted by Stats.
const (
	KindTimeout     = "timeout"    // the call's deadline passed
	KindConnection  = "connection" // dial refused, connection reset, closed client
	KindPoolTimeout = "pool_timeout"
	KindServer      = "server"       // an error reply from Redis (not redis.Nil)
	KindCanceled    = "canceled"     // the caller went away
	KindCircuitOpen = "circuit_open" // a Guard refused: Redis is considered down
	KindBusy        = "busy"         // a Guard refused: too many calls in flight
)

// Stats counts commands and errors. It is written by the client's hook and
// by Guards, and read at scrape time.
type Stats struct {
	commands sync.Map // name → *Histogram
	errors   sync.Map // kind → *atomic.Uint64
	// reload, when set, asks a cluster client to re-read the slot map
	// (coalesced by go-redis): after a connection failure a slot may have a
	// new master.
	reload func()
}

// Histogram is a lock-free latency histogram over Buckets.
type Histogram struct {
	counts [14]atomic.Uint64 // len(Buckets)+1; the last is +Inf
	sumNs  atomic.Int64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(Buckets) && s > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the count, the sum in seconds and the cumulative bucket counts.
func (h *Histogram) Snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(Buckets))
	for i, ub := range Buckets {
		count += h.counts[i].Load()
		buckets[ub] = count
	}
	count += h.counts[len(Buckets)].Load()
	return count, float64(h.sumNs.Load()) / 1e9, buckets
}

func (s *Stats) command(name string) *Histogram {
	h, ok := s.commands.Load(name)
	if !ok {
		h, _ = s.commands.LoadOrStore(name, &Histogram{})
	}
	return h.(*Histogram)
}

// Commands returns the latency histogram of every command seen, by name.
func (s *Stats) Commands() map[string]*Histogram {
	out := map[string]*Histogram{}
	s.commands.Range(func(k, v any) bool {
		out[k.(string)] = v.(*Histogram)
		return true
	})
	return out
}

// CountError counts one error of kind.
func (s *Stats) CountError(kind string) {
	v, ok := s.errors.Load(kind)
	if !ok {
		v, _ = s.errors.LoadOrStore(kind, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Errors returns the error counts by kind.
func (s *Stats) Errors() map[string]uint64 {
	out := map[string]uint64{}
	s.errors.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// Kind classifies err for the error counter; "" for no error or redis.Nil.
func Kind(err error) string {
	var re redis.Error
	var ne net.Error
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		return ""
	case errors.Is(err, redis.ErrPoolTimeout):
		return KindPoolTimeout
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.As(err, &re) && !isConnReply(err):
		return KindServer
	}
	return KindConnection
}

// isConnReply reports replies that mean the connection, not the command, failed.
func isConnReply(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "LOADING") || strings.HasPrefix(s, "READONLY") || strings.HasPrefix(s, "MASTERDOWN")
}

// failed counts an error of kind ("" for none) and, for a failure of the
// connection, has a cluster client re-read the slot map.
func (s *Stats) failed(kind string) {
	if kind == "" {
		return
	}
	s.CountError(kind)
	if s.reload != nil && (kind == KindConnection || kind == KindTimeout) {
		s.reload()
	}
}

// hook times every command and counts its errors.
type hook struct{ s *Stats }

func (h hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.s.CountError(Kind(err))
		}
		return c, err
	}
}

func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.s.command(cmd.Name()).Observe(time.Since(start))
		h.s.failed(Kind(err))
		return err
	}
}

func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.s.command("pipeline").Observe(time.Since(start))
		h.s.failed(Kind(err))
		return err
	}
}
