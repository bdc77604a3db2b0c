package gateway

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/config/scg"
)

// Check parses a config file's contents, native or a Spring Cloud Gateway
// application.yml, and reports every problem at once, as `sluice validate`
// does: syntax and schema errors together with unknown or misused
// predicates and filters, sorted by position.
func Check(path string, data []byte) (*config.Config, error) {
	cfg, _, err := check(path, data)
	return cfg, err
}

// check is Check, also returning the warnings of a Spring import.
func check(path string, data []byte) (*config.Config, config.Errors, error) {
	return checkServices(path, data, nil)
}

// checkServices is check with the services the registry lists, for the
// routes of a Spring file's discovery locator.
func checkServices(path string, data []byte, services []string) (*config.Config, config.Errors, error) {
	var cfg *config.Config
	var errs, warnings config.Errors
	if scg.IsSpring(data) {
		cfg, errs, warnings = scg.ImportServices(path, data, os.LookupEnv, services)
	} else {
		cfg, errs = config.ParseAll(path, data)
	}
	if cfg != nil {
		for _, e := range CheckDefinitions(cfg) {
			// A Spring filter the import already reported is not also an unknown one.
			if !slices.ContainsFunc(errs, func(x *config.Error) bool { return x.Line == e.Line && x.Col == e.Col && x.Path == e.Path }) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) == 0 {
		return cfg, warnings, nil
	}
	slices.SortStableFunc(errs, func(a, b *config.Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return nil, warnings, slices.CompactFunc(errs, func(a, b *config.Error) bool { return *a == *b })
}

// Reload reads the config file again and, if it is valid, swaps it in
// atomically: requests in flight finish on the config they started with;
// upstreams keep their endpoints' live state (see Build). Every field of the
// new file is applied, or the reload is refused: an invalid file, one that
// changes a field only a restart can change (restartOnly), or one without
// routes that does not say `routes: []`. A refused reload changes nothing.
// Either way the outcome is logged and counted (sluice_config_reloads_total).
func (g *Gateway) Reload() error {
	err := g.reload()
	g.reloads.Observe(err)
	if g.admin != nil {
		g.admin.RecordReload(err)
	}
	if err != nil {
		g.log.Error("reload rejected; the previous config keeps serving", "file", g.path, "error", err.Error())
	}
	return err
}

func (g *Gateway) reload() error {
	data, err := config.ReadFile(g.path)
	if err != nil {
		return err
	}
	g.applyMu.Lock()
	cfg, err := g.apply(data, g.services)
	if err == nil {
		g.data = data
	}
	g.applyMu.Unlock()
	if err != nil {
		return err
	}
	g.followServices(cfg.ServiceList)
	return nil
}

// apply checks the file's contents data, importing a Spring file with the
// services the discovery locator makes routes for, and swaps the result in.
// The caller holds applyMu.
func (g *Gateway) apply(data []byte, services []string) (*config.Config, error) {
	cfg, warnings, err := checkServices(g.path, data, services)
	for _, w := range warnings {
		g.log.Warn("spring property not imported", "problem", w.Error())
	}
	if err != nil {
		return nil, err
	}
	if cfg.Routes == nil && cfg.ServiceList == nil {
		return nil, fmt.Errorf("%s: no routes: a reload to a config without routes would answer every request 404; write `routes: []` to mean it", g.path)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.runtime
	if changed := restartChanges(old.Config, cfg); len(changed) > 0 {
		return nil, fmt.Errorf("%s: a restart is needed to change %s; nothing was reloaded", g.path, strings.Join(changed, ", "))
	}
	next, err := Build(cfg, old)
	if err != nil {
		return nil, err
	}
	if err := g.proxy.SetAccessLog(cfg.Log.AccessLog, cfg.Log.AccessFields, cfg.Log.AccessSample2xx); err != nil {
		Retire(next, old)
		return nil, err
	}
	g.proxy.SetTable(next.Table)
	g.runtime = next
	// What only the old config used goes once no request that matched a
	// route of it still has to reach its upstream.
	old.Table.Retire(func() { Retire(old, next) })
	kept := 0
	for name, c := range next.Clusters {
		if old.Clusters[name] == c {
			kept++
			continue
		}
		if next.checkers[name] == nil {
			c.ClearActiveHealth() // the checks that marked its endpoints are gone
		}
		if addrs := next.registries[name].TakeRecreated(); len(addrs) > 0 {
			g.log.Info("upstream pool options changed: new connection pools for its endpoints", "upstream", name, "endpoints", addrs)
		}
	}
	g.log.Info("reloaded", "file", g.path, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams), "upstreams_kept", kept)
	return cfg, nil
}

// restartOnly are the config fields (YAML paths; a path covers what is
// under it) that a running gateway cannot change: what they configure is
// made once at start (listeners and their sockets, the admin port, the
// logger, the span exporter, the file watch). A reload that changes one is
// refused. Every other field is applied by a reload (appliedByReload);
// TestReloadClassifiesEveryConfigField keeps the two lists complete.
var restartOnly = []string{
	"server.listen", "server.read_header_timeout", "server.idle_timeout", "server.release_idle_after",
	"server.max_header_bytes", "server.max_connections", "server.keepalive", "server.h2c", "server.tls",
	"server.body_timeout", "server.body_min_rate",
	"server.listeners",
	"admin",
	"log.level", "log.format",
	"tracing",
	"reload",
}

// appliedByReload are the config fields a reload applies: Build makes the
// routes, upstreams, filters and limits anew (keeping live state), and
// reload gives the proxy its new table (trusted proxies, global limit) and
// access log; Stop reads the drain timings in force.
var appliedByReload = []string{
	"server.trusted_proxies", "server.host_include_port", "server.forwarded_prefix", "server.untrusted_headers", "server.response_timeout", "server.max_body_size",
	"server.max_concurrent_requests", "server.queue",
	"log.access_log", "log.access_fields", "log.access_sample_2xx",
	"drain",
	"redis", "upstreams", "upstream_defaults", "default_filters", "routes", "cors", "compression",
}

// restartChanges lists the restartOnly fields whose values differ between
// the running config and next (where a listener is written does not matter).
func restartChanges(running, next *config.Config) []string {
	a, b := reflect.ValueOf(withoutPositions(running)), reflect.ValueOf(withoutPositions(next))
	var out []string
	for _, path := range restartOnly {
		if !reflect.DeepEqual(fieldAt(a, path).Interface(), fieldAt(b, path).Interface()) {
			out = append(out, path)
		}
	}
	return out
}

// withoutPositions is a shallow copy of c whose listeners carry no file position.
func withoutPositions(c *config.Config) config.Config {
	cp := *c
	cp.Server.Listeners = slices.Clone(c.Server.Listeners)
	for i := range cp.Server.Listeners {
		cp.Server.Listeners[i].Pos, cp.Server.Listeners[i].Path = config.Pos{}, ""
	}
	return cp
}

// fieldAt returns the field of the struct v at a YAML path ("server.tls"),
// following pointers to structs.
func fieldAt(v reflect.Value, path string) reflect.Value {
	for name := range strings.SplitSeq(path, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v = reflect.Zero(v.Type().Elem())
			} else {
				v = v.Elem()
			}
		}
		v = v.FieldByIndex(yamlField(v.Type(), name).Index)
	}
	return v
}

// yamlField is the field of struct type t whose YAML key is name.
func yamlField(t reflect.Type, name string) reflect.StructField {
	for i := range t.NumField() {
		f := t.Field(i)
		if key, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); key == name {
			return f
		}
	}
	panic("config has no field " + name + " in " + t.Name())
}

// watch polls the config file every interval and reloads once a change has
// stayed put for one interval (a file being written is not read half-way).
// It returns when stop is closed.
func (g *Gateway) watch(interval time.Duration, stop <-chan struct{}) {
	applied, _ := fileStamp(g.path)
	last := applied
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur, err := fileStamp(g.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if cur != last {
			last = cur // changed: wait for it to settle
			continue
		}
		if cur != applied && err == nil {
			applied = cur
			g.log.Info("config file changed; reloading", "file", g.path)
			g.Reload()
		}
	}
}

type stamp struct {
	mod  time.Time
	size int64
}

func fileStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}
