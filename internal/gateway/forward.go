package gateway

import (
	"net/url"
	"strings"

	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/filter/circuitbreaker"
	"github.com/sluice-gw/sluice/internal/route"
)

// checkForwards reports each CircuitBreaker fallbackUri forward:/PATH that
// no route can serve: it goes through the routing table again, and where
// no route's Path patterns match PATH (in a Spring application, a handler
// of the application would answer it) every fallback would be a 404.
func checkForwards(cfg *config.Config) config.Errors {
	var errs config.Errors
	check := func(d config.Definition) {
		if d.Name != "CircuitBreaker" {
			return
		}
		a, err := d.Bind(circuitbreaker.Factory.Fields)
		if err != nil {
			return // reported by the filter
		}
		fb, _ := a.String("fallbackUri", "")
		rest, ok := strings.CutPrefix(fb, "forward:")
		if !ok {
			return
		}
		u, err := url.Parse(rest)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return // reported by the filter
		}
		if !servesPath(cfg, u.Path) {
			errs = append(errs, cfg.Errorf(d.Pos, d.Path, "CircuitBreaker: fallbackUri %q: no route serves %s, so every fallback would answer 404; "+
				"in Spring it is a handler inside the application: add a route for it, or use an http(s) fallbackUri", fb, u.Path))
		}
	}
	for _, d := range cfg.DefaultFilters {
		check(d)
	}
	for _, r := range cfg.Routes {
		for _, d := range r.Filters {
			check(d)
		}
	}
	return errs
}

// servesPath reports whether some route's Path patterns match path (a route
// without a Path predicate serves any path).
func servesPath(cfg *config.Config, path string) bool {
	pathFactory := route.Predicates()["Path"]
	in := &route.Input{Path: path}
	for _, r := range cfg.Routes {
		matches := true
		for _, d := range r.Predicates {
			if d.Name != "Path" {
				continue
			}
			a, err := d.Bind(pathFactory.Fields)
			if err != nil {
				return true // reported elsewhere; do not add a second error
			}
			p, err := pathFactory.New(a, nil)
			if err != nil {
				return true
			}
			if !p.Match(in) {
				matches = false
			}
		}
		if matches {
			return true
		}
	}
	return false
}
