package config

import (
	"fmt"
	"net/url"
)

// checkObservability checks the tracing, access-log and overload settings
// of the server, admin and log blocks.
func (d *decoder) checkObservability(c *Config) {
	d.atLeast("server.max_concurrent_requests", c.Server.MaxConcurrentRequests, 0)
	d.checkQueue(&c.Server.Queue, "server.queue")
	d.fraction("admin.ready_saturation_threshold", c.Admin.ReadySaturationThreshold)
	d.fraction("log.access_sample_2xx", c.Log.AccessSample2xx)
	seen := map[string]bool{}
	for i, f := range c.Log.AccessFields {
		path := fmt.Sprintf("log.access_fields[%d]", i)
		if seen[f] {
			d.invalid(path, "%q is listed twice", f)
			continue
		}
		seen[f] = true
		d.oneOf(path, f, AccessFieldNames...)
	}
	t := &c.Tracing
	d.fraction("tracing.sample_ratio", t.SampleRatio)
	if t.Enabled {
		u, err := url.Parse(t.Endpoint)
		switch {
		case t.Endpoint == "":
			d.missing(d.pos("tracing"), "tracing", "endpoint", "must not be empty when tracing is enabled")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			d.invalid("tracing.endpoint", "%q is not an http:// or https:// URL", t.Endpoint)
		}
		d.positive("tracing.batch_timeout", int64(t.BatchTimeout))
		if t.ServiceName == "" {
			d.invalid("tracing.service_name", "must not be empty")
		}
	}
}

// fraction checks that v is in [0, 1].
func (d *decoder) fraction(path string, v float64) {
	if v < 0 || v > 1 {
		d.invalid(path, "must be between 0 and 1, got %g", v)
	}
}

func (d *decoder) checkQueue(q *Queue, path string) {
	d.atLeast(path+".size", q.Size, 0)
	if q.Size > 0 && q.Timeout <= 0 {
		d.invalid(path+".timeout", "must be greater than 0 when size is set")
	}
}

func (d *decoder) checkConcurrency(r *Route) {
	d.atLeast(r.Path+".max_concurrent_requests", r.MaxConcurrentRequests, 0)
	d.checkQueue(&r.Queue, r.Path+".queue")
	a := r.AdaptiveConcurrency
	if a == nil {
		return
	}
	path := r.Path + ".adaptive_concurrency"
	if _, ok := d.at[path+".max_limit"]; !ok && r.MaxConcurrentRequests > 0 {
		a.MaxLimit = r.MaxConcurrentRequests
	}
	if _, ok := d.at[path+".initial_limit"]; !ok {
		a.InitialLimit = min(max(a.InitialLimit, a.MinLimit), a.MaxLimit)
	}
	ok := d.positive(path+".min_limit", int64(a.MinLimit))
	ok = d.positive(path+".max_limit", int64(a.MaxLimit)) && ok
	if ok && a.MaxLimit < a.MinLimit {
		d.invalid(path+".max_limit", "must be at least min_limit (%d), got %d", a.MinLimit, a.MaxLimit)
	} else if ok && (a.InitialLimit < a.MinLimit || a.InitialLimit > a.MaxLimit) {
		d.invalid(path+".initial_limit", "must be between min_limit and max_limit (%d..%d), got %d", a.MinLimit, a.MaxLimit, a.InitialLimit)
	}
	if a.Tolerance < 1 {
		d.invalid(path+".tolerance", "must be at least 1, got %g", a.Tolerance)
	}
	d.positive(path+".window", int64(a.Window))
	d.positive(path+".baseline_half_life", int64(a.BaselineHalfLife))
}
