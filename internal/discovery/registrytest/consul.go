package registrytest

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Consul serves Consul's health endpoint, GET /v1/health/service/NAME, with
// blocking queries (index, wait; X-Consul-Index) and the passing and tag
// filters, and the catalog's service list, GET /v1/catalog/services, with
// blocking queries too.
type Consul struct {
	server
	svcs    *services
	Queries atomic.Int64
	tags    map[string][]string
}

// NewConsul starts a Consul server; it stops with the test.
func NewConsul(t testing.TB) *Consul {
	c := &Consul{svcs: newServices()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health/service/{service}", c.health)
	mux.HandleFunc("GET /v1/catalog/services", c.catalog)
	c.server = server{t: t, handler: mux}
	c.start()
	t.Cleanup(c.Stop)
	return c
}

// Set replaces the instances of service; each is tagged with tags.
func (c *Consul) Set(service string, tags []string, insts ...Instance) {
	if tags == nil {
		tags = []string{}
	}
	tagged := make([]Instance, len(insts))
	copy(tagged, insts)
	c.svcs.set(service, tagged)
	c.svcs.mu.Lock()
	if c.tags == nil {
		c.tags = map[string][]string{}
	}
	c.tags[service] = tags
	c.svcs.mu.Unlock()
}

// catalog answers the names and tags of the services that have instances.
func (c *Consul) catalog(w http.ResponseWriter, r *http.Request) {
	c.Queries.Add(1)
	q := r.URL.Query()
	names, version, changed := c.svcs.names("")
	if idx, err := strconv.ParseUint(q.Get("index"), 10, 64); err == nil && idx >= version {
		wait, err := time.ParseDuration(q.Get("wait"))
		if err != nil || wait <= 0 || wait > 10*time.Minute {
			wait = 5 * time.Minute
		}
		select {
		case <-changed:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
		names, version, _ = c.svcs.names("")
	}
	doc := fixture("consul-catalog-services.json").(map[string]any)
	clear(doc)
	c.svcs.mu.Lock()
	for _, name := range names {
		doc[name] = append([]string{}, c.tags[name]...)
	}
	c.svcs.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(version, 10))
	writeJSON(w, doc)
}

func (c *Consul) health(w http.ResponseWriter, r *http.Request) {
	c.Queries.Add(1)
	q := r.URL.Query()
	svc := r.PathValue("service")
	insts, version, changed := c.svcs.get(svc)
	if idx, err := strconv.ParseUint(q.Get("index"), 10, 64); err == nil && idx >= version {
		wait, err := time.ParseDuration(q.Get("wait"))
		if err != nil || wait <= 0 || wait > 10*time.Minute {
			wait = 5 * time.Minute
		}
		select {
		case <-changed:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
		insts, version, _ = c.svcs.get(svc)
	}
	c.svcs.mu.Lock()
	tags := c.tags[svc]
	c.svcs.mu.Unlock()
	_, passingOnly := q["passing"]
	if tag := q.Get("tag"); tag != "" && !slices.Contains(tags, tag) {
		insts = nil
	}
	proto := fixture("consul-health-service.json").([]any)[0]
	out := []any{}
	for _, in := range insts {
		if passingOnly && !in.Healthy {
			continue
		}
		e := clone(proto).(map[string]any)
		host, port := splitAddr(in.Addr)
		s := e["Service"].(map[string]any)
		s["ID"], s["Service"], s["Address"], s["Port"], s["Tags"] = svc+"-"+in.Addr, svc, host, port, tags
		wt := int(in.Weight)
		if wt == 0 {
			wt = 1
		}
		s["Weights"] = map[string]any{"Passing": wt, "Warning": 1}
		e["Node"].(map[string]any)["Address"] = host
		st := "passing"
		if !in.Healthy {
			st = "critical"
		}
		e["Checks"].([]any)[0].(map[string]any)["Status"] = st
		out = append(out, e)
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(version, 10))
	w.Header().Set("X-Consul-Knownleader", "true")
	w.Header().Set("X-Consul-Lastcontact", "0")
	writeJSON(w, out)
}
