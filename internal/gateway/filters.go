package gateway

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"

	"github.com/sluice-gw/sluice/internal/cluster"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/filter/compress"
	"github.com/sluice-gw/sluice/internal/filter/cors"
	"github.com/sluice-gw/sluice/internal/proxy"
	"github.com/sluice-gw/sluice/internal/route"
)

// filterEnv is what the filters of one route may use. Forward goes through
// table, the table being built: fallbacks forward within their own snapshot.
func filterEnv(cfg *config.Config, routeID string, table *proxy.Table) *filter.Env {
	return &filter.Env{
		RouteID:        routeID,
		TrustedProxies: cfg.Server.TrustedProxies,
		Log:            slog.Default(),
		Forward:        func(r *http.Request) (*http.Response, error) { return table.Forward(r) },
	}
}

// globals are the filters the top-level blocks put in front of every route:
// response compression (outermost, so it sees the final response), then
// CORS (so a preflight is answered before any other filter runs). A route
// with its own Cors filter does without the global CORS policy.
type globals struct {
	compress, cors filter.Filter
}

func (g globals) forRoute(defs ...[]config.Definition) []filter.Filter {
	var out []filter.Filter
	if g.compress != nil {
		out = append(out, g.compress)
	}
	if g.cors != nil && !slices.ContainsFunc(slices.Concat(defs...), func(d config.Definition) bool { return d.Name == "Cors" }) {
		out = append(out, g.cors)
	}
	return out
}

func globalFilters(cfg *config.Config) (globals, config.Errors) {
	var g globals
	var errs config.Errors
	if c := cfg.Compression; c.Enabled {
		g.compress = compress.New(compress.Options{MinSize: c.MinSize, Types: c.Types})
	}
	if len(cfg.CORS) > 0 {
		var rules []cors.Rule
		for pattern, p := range cfg.CORS {
			match, err := route.PathMatcher(pattern)
			if err != nil {
				errs = append(errs, cfg.Errorf(p.Pos, p.Path, "path pattern %q: %v", pattern, err))
				continue
			}
			rule := cors.Rule{Pattern: pattern, Match: match, Policy: cors.Policy{
				AllowedOrigins: p.AllowedOrigins, AllowedOriginPatterns: p.AllowedOriginPatterns,
				AllowedMethods: p.AllowedMethods, AllowedHeaders: p.AllowedHeaders, ExposedHeaders: p.ExposedHeaders,
				AllowCredentials: p.AllowCredentials, MaxAge: p.MaxAge,
			}}
			if err := cors.Check(rule.Policy); err != nil {
				errs = append(errs, cfg.Errorf(p.Pos, p.Path, "%v", err))
				continue
			}
			rules = append(rules, rule)
		}
		// The first pattern in file order wins, as in Spring's globalcors.
		slices.SortFunc(rules, func(a, b cors.Rule) int {
			pa, pb := cfg.CORS[a.Pattern].Pos, cfg.CORS[b.Pattern].Pos
			return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col))
		})
		if len(errs) == 0 {
			g.cors, _ = cors.Global(rules)
		}
	}
	return g, errs
}

// applyRetriers applies the Retry filters among fs to p and returns the
// other filters: a Retry filter acts through the route's policy only.
func applyRetriers(fs []filter.Filter, p *cluster.Policy) []filter.Filter {
	out := fs[:0:0]
	for _, f := range fs {
		rf, ok := f.(filter.Retrier)
		if !ok {
			out = append(out, f)
			continue
		}
		rp := rf.RetryPolicy()
		if rp.Attempts > 0 {
			p.Attempts = rp.Attempts
		}
		if rp.Statuses != nil {
			p.Statuses = rp.Statuses
		}
		if rp.Methods != nil {
			p.Methods = rp.Methods
		}
		if rp.BackoffBase > 0 {
			p.BackoffBase, p.BackoffMax = rp.BackoffBase, rp.BackoffMax
		}
	}
	return out
}
