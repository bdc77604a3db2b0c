package gateway

import (
	"errors"
	"os"
	"reflect"
	"slices"
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
	var cfg *config.Config
	var errs, warnings config.Errors
	if scg.IsSpring(data) {
		cfg, errs, warnings = scg.Import(path, data, os.LookupEnv)
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
// upstreams whose definition did not change keep their clusters (pools,
// health, counters, discovery); removed or changed ones are drained. An
// invalid file changes nothing. Either way the outcome is logged and counted
// (sluice_config_reloads_total).
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
	data, err := os.ReadFile(g.path)
	if err != nil {
		return err
	}
	cfg, warnings, err := check(g.path, data)
	for _, w := range warnings {
		g.log.Warn("spring property not imported", "problem", w.Error())
	}
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	next, err := Build(cfg, g.runtime)
	if err != nil {
		return err
	}
	g.proxy.SetTable(next.Table)
	old := g.runtime
	g.runtime = next
	Retire(old, next)
	kept := 0
	for name, c := range next.Clusters {
		if old.Clusters[name] == c {
			kept++
		}
	}
	g.log.Info("reloaded", "file", g.path, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams), "upstreams_kept", kept)
	if changes := listenerChanges(g.listenerConfig, cfg.Server.AllListeners()); len(changes) > 0 {
		g.log.Warn("listener changes need a restart; the listeners keep serving as started", "file", g.path, "changes", changes)
	}
	return nil
}

// listenerChanges says how the listeners of a new config differ from the
// ones running, which were bound at start: "added NAME (ADDR)", "removed
// NAME", "changed NAME" (an address or a connection setting), by name (the
// metrics label; the primary's is server.listen).
func listenerChanges(running, next []config.Listener) []string {
	settings := func(l config.Listener) config.Listener {
		l.Pos, l.Path = config.Pos{}, "" // where it is written does not matter
		return l
	}
	was := map[string]config.Listener{}
	for _, l := range running {
		was[l.Name] = l
	}
	var out []string
	kept := map[string]bool{}
	for _, l := range next {
		old, ok := was[l.Name]
		kept[l.Name] = ok
		switch {
		case !ok:
			out = append(out, "added "+l.Name+" ("+l.Listen+")")
		case !reflect.DeepEqual(settings(old), settings(l)):
			out = append(out, "changed "+l.Name)
		}
	}
	for _, l := range running {
		if !kept[l.Name] {
			out = append(out, "removed "+l.Name)
		}
	}
	return out
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
