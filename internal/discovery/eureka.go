package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Eureka follows the instances of one application registered in Netflix
// Eureka, as Spring Cloud Netflix's discovery client does (the properties
// under eureka.client). The sources of one registry share an EurekaClient,
// which holds the registry the way Eureka's own client does.
//
// There is no maintained Go client of Eureka (hudl/fargo and the forks of
// ArthurHlt/go-eureka-client have been idle for years), so EurekaClient
// speaks Eureka's documented REST API with net/http and encoding/json.
type Eureka struct {
	Client *EurekaClient
	App    string // the application name (Spring's spring.application.name), any case
	Log    *slog.Logger
	Stats  *Stats
}

func (e *Eureka) stats() *Stats { return e.Stats }

// Run publishes the application's instances after every registry fetch
// until ctx ends. Instance status maps as Spring Cloud's load balancer sees
// it: UP is ready; DOWN and OUT_OF_SERVICE are draining (still serving what
// they were sent); STARTING and UNKNOWN are left out.
func (e *Eureka) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	out := &dedup{publish: publish, stats: e.Stats}
	fetched, stop := e.Client.watch()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fetched:
		}
		insts, err := e.Client.Instances(e.App)
		if err != nil {
			e.Stats.fail(log, err)
			continue
		}
		e.Stats.ok(log)
		out.send(EurekaSpecs(insts))
	}
}

// EurekaSpecs maps the instances of one application to endpoints.
func EurekaSpecs(insts []EurekaInstance) []endpoint.Spec {
	state := map[string]bool{} // address → ready
	for _, in := range insts {
		status := strings.ToUpper(in.Status)
		if status != "UP" && status != "DOWN" && status != "OUT_OF_SERVICE" {
			continue
		}
		host := in.HostName
		if host == "" {
			host = in.IPAddr
		}
		addr, ok := instanceAddr(host, in.Port.Number)
		if !ok || !in.Port.enabled() {
			continue
		}
		state[addr] = state[addr] || status == "UP"
	}
	specs := make([]endpoint.Spec, 0, len(state))
	for addr, ready := range state {
		specs = append(specs, endpoint.Spec{Addr: addr, Weight: 1, Draining: !ready})
	}
	sortSpecs(specs)
	return specs
}

// EurekaClient fetches a Eureka registry as Eureka's own client does: the
// whole registry (GET apps/) first, then only the changes (GET apps/delta)
// every Interval, checked against the registry's reconciliation hash
// (apps__hashcode); a mismatch, or a server without deltas, means a full
// fetch again. ServiceURLs (Spring's eureka.client.service-url, every
// zone, the client's own zone first) are tried in turn. The client fetches
// only while some source watches it.
type EurekaClient struct {
	ServiceURLs []string      // like http://eureka:8761/eureka/
	Interval    time.Duration // default 30s (registry-fetch-interval-seconds)
	// FullOnly turns delta fetches off (eureka.client.disable-delta).
	FullOnly bool
	HTTP     *http.Client
	Log      *slog.Logger

	mu       sync.Mutex
	apps     map[string]map[string]EurekaInstance // upper-case app name → instance id → instance
	err      error                                // of the last fetch
	fetched  bool                                 // a full fetch succeeded once
	watchers map[chan struct{}]bool
	cancel   context.CancelFunc
	next     int // the service URL to try first
}

// EurekaInstance is one instance in Eureka's JSON.
type EurekaInstance struct {
	InstanceID string     `json:"instanceId"`
	App        string     `json:"app"`
	HostName   string     `json:"hostName"`
	IPAddr     string     `json:"ipAddr"`
	Status     string     `json:"status"`
	Port       eurekaPort `json:"port"`
	ActionType string     `json:"actionType"` // in deltas: ADDED, MODIFIED, DELETED
}

// eurekaPort is {"$": 8080, "@enabled": "true"}; Eureka writes both as
// numbers or strings depending on its version.
type eurekaPort struct {
	Number  int
	Enabled string
}

func (p *eurekaPort) UnmarshalJSON(b []byte) error {
	var raw struct {
		N json.RawMessage `json:"$"`
		E json.RawMessage `json:"@enabled"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.Trim(string(raw.N), `"`))
	if err != nil {
		return fmt.Errorf("port %s: %w", raw.N, err)
	}
	p.Number, p.Enabled = n, strings.Trim(string(raw.E), `"`)
	return nil
}

func (p eurekaPort) enabled() bool { return p.Enabled == "" || strings.EqualFold(p.Enabled, "true") }

// eurekaApps is the answer of apps/ and apps/delta. Older servers write a
// list of one element as the element itself, so both are read.
type eurekaApps struct {
	Applications struct {
		HashCode    string               `json:"apps__hashcode"`
		Application oneOrMany[eurekaApp] `json:"application"`
	} `json:"applications"`
}

type eurekaApp struct {
	Name     string                    `json:"name"`
	Instance oneOrMany[EurekaInstance] `json:"instance"`
}

// oneOrMany reads a JSON list, or a single value as a list of one.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]T)(o))
	}
	if string(b) == "null" {
		*o = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = oneOrMany[T]{v}
	return nil
}

// Instances returns the instances of app from the registry held, or the
// error of the last fetch if no fetch has succeeded yet or the last failed.
func (c *EurekaClient) Instances(app string) ([]EurekaInstance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return slices.Collect(maps.Values(c.apps[strings.ToUpper(app)])), nil
}

// watch returns a channel poked after every fetch, starting the fetch loop
// for the first watcher; stop ends the watch, and the loop with the last.
func (c *EurekaClient) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		c.watchers = map[chan struct{}]bool{}
	}
	c.watchers[ch] = true
	if c.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go c.loop(ctx)
	} else if c.fetched || c.err != nil {
		ch <- struct{}{}
	}
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watchers, ch)
		if len(c.watchers) == 0 && c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
	}
}

func (c *EurekaClient) loop(ctx context.Context) {
	interval := c.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	for {
		err := c.Fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.err = err
		for ch := range c.watchers {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
		if !sleep(ctx, interval) {
			return
		}
	}
}

// Fetch brings the registry up to date: a delta when possible, else the
// whole registry.
func (c *EurekaClient) Fetch(ctx context.Context) error {
	c.mu.Lock()
	full := !c.fetched || c.FullOnly
	c.mu.Unlock()
	if !full {
		var delta eurekaApps
		err := c.get(ctx, "apps/delta", &delta)
		if err != nil && httpStatus(err) == 0 {
			return err // unreachable: no point in a full fetch
		}
		if err == nil && c.applyDelta(&delta) {
			return nil
		}
		c.logger().Debug("eureka: delta not usable; fetching the whole registry")
	}
	var all eurekaApps
	if err := c.get(ctx, "apps/", &all); err != nil {
		return err
	}
	apps := map[string]map[string]EurekaInstance{}
	for _, a := range all.Applications.Application {
		m := map[string]EurekaInstance{}
		for _, in := range a.Instance {
			m[instanceKey(in)] = in
		}
		apps[strings.ToUpper(a.Name)] = m
	}
	c.mu.Lock()
	c.apps, c.fetched = apps, true
	c.mu.Unlock()
	return nil
}

// applyDelta applies a delta to a copy of the registry and keeps it if the
// result has the server's hash; false means a full fetch is needed.
func (c *EurekaClient) applyDelta(d *eurekaApps) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	apps := make(map[string]map[string]EurekaInstance, len(c.apps))
	for name, m := range c.apps {
		apps[name] = maps.Clone(m)
	}
	for _, a := range d.Applications.Application {
		for _, in := range a.Instance {
			name := strings.ToUpper(cmpOr(in.App, a.Name))
			switch strings.ToUpper(in.ActionType) {
			case "DELETED":
				delete(apps[name], instanceKey(in))
			default: // ADDED, MODIFIED
				if apps[name] == nil {
					apps[name] = map[string]EurekaInstance{}
				}
				apps[name][instanceKey(in)] = in
			}
		}
	}
	if d.Applications.HashCode == "" || reconcileHash(apps) != d.Applications.HashCode {
		return false
	}
	c.apps = apps
	return true
}

// reconcileHash is Eureka's apps__hashcode: for each status in sorted
// order, STATUS_count_.
func reconcileHash(apps map[string]map[string]EurekaInstance) string {
	counts := map[string]int{}
	for _, m := range apps {
		for _, in := range m {
			counts[strings.ToUpper(in.Status)]++
		}
	}
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "%s_%d_", st, counts[st])
	}
	return b.String()
}

func instanceKey(in EurekaInstance) string {
	if in.InstanceID != "" {
		return in.InstanceID
	}
	return in.HostName + ":" + strconv.Itoa(in.Port.Number)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// get fetches path under the service URLs, trying each in turn.
func (c *EurekaClient) get(ctx context.Context, path string, v any) error {
	if len(c.ServiceURLs) == 0 {
		return errors.New("eureka: no service URL")
	}
	c.mu.Lock()
	first := c.next
	c.mu.Unlock()
	var errs []error
	for i := range c.ServiceURLs {
		k := (first + i) % len(c.ServiceURLs)
		base, err := serverURL(c.ServiceURLs[k], 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		base.Path = strings.TrimSuffix(base.Path, "/") + "/"
		req, err := http.NewRequest(http.MethodGet, base.JoinPath(path).String(), nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("User-Agent", "sluice")
		if base.User != nil { // http://user:password@host/eureka/, as Spring allows
			pw, _ := base.User.Password()
			req.SetBasicAuth(base.User.Username(), pw)
			req.URL.User = nil
		}
		if err = getJSON(ctx, c.HTTP, req, v); err == nil {
			c.mu.Lock()
			c.next = k
			c.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("eureka: %w", errors.Join(errs...))
}

func (c *EurekaClient) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}
