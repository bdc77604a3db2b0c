package registrytest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Eureka serves Eureka's REST API under /eureka/: GET apps/ (the whole
// registry), apps/delta (the recent changes, with the registry's
// reconciliation hash) and apps/NAME, in JSON.
type Eureka struct {
	server
	FullFetches, DeltaFetches atomic.Int64

	mu      sync.Mutex
	apps    map[string][]Instance // upper-case app name
	changes []change              // every change, oldest first
}

type change struct {
	app    string
	inst   Instance
	action string
}

// NewEureka starts a Eureka server; it stops with the test.
func NewEureka(t testing.TB) *Eureka {
	e := &Eureka{apps: map[string][]Instance{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /eureka/apps/{$}", e.all)
	mux.HandleFunc("GET /eureka/apps/delta", e.delta)
	mux.HandleFunc("GET /eureka/apps/{app}", e.one)
	e.server = server{t: t, handler: mux}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

// ServiceURL is the URL a client is configured with (defaultZone).
func (e *Eureka) ServiceURL() string { return e.URL() + "/eureka/" }

// Set replaces the instances of app, recording the changes for deltas.
func (e *Eureka) Set(app string, insts ...Instance) {
	app = strings.ToUpper(app)
	e.mu.Lock()
	defer e.mu.Unlock()
	old := map[string]Instance{}
	for _, in := range e.apps[app] {
		old[in.Addr] = in
	}
	for _, in := range insts {
		action := "ADDED"
		if _, ok := old[in.Addr]; ok {
			action = "MODIFIED"
			delete(old, in.Addr)
		}
		e.changes = append(e.changes, change{app, in, action})
	}
	for _, in := range old {
		e.changes = append(e.changes, change{app, in, "DELETED"})
	}
	e.apps[app] = slices.Clone(insts)
}

func status(in Instance) string {
	switch {
	case in.Status != "":
		return in.Status
	case in.Disabled:
		return "OUT_OF_SERVICE"
	case in.Healthy:
		return "UP"
	}
	return "DOWN"
}

func (e *Eureka) instanceJSON(app string, in Instance, action string) any {
	doc := fixture("eureka-apps.json").(map[string]any)
	proto := doc["applications"].(map[string]any)["application"].([]any)[0].(map[string]any)["instance"].([]any)[0]
	h := clone(proto).(map[string]any)
	host, port := splitAddr(in.Addr)
	id := fmt.Sprintf("%s:%s:%d", host, strings.ToLower(app), port)
	h["instanceId"], h["hostName"], h["ipAddr"], h["app"] = id, host, host, app
	h["status"], h["actionType"] = status(in), action
	h["port"] = map[string]any{"$": port, "@enabled": "true"}
	h["vipAddress"], h["secureVipAddress"] = strings.ToLower(app), strings.ToLower(app)
	h["homePageUrl"] = "http://" + in.Addr + "/"
	return h
}

// document is the recorded apps document holding apps, with hash.
func (e *Eureka) document(apps map[string][]any) any {
	doc := fixture("eureka-apps.json").(map[string]any)
	a := doc["applications"].(map[string]any)
	list := []any{}
	for _, name := range slices.Sorted(maps.Keys(apps)) {
		list = append(list, map[string]any{"name": name, "instance": apps[name]})
	}
	a["application"] = list
	a["apps__hashcode"] = e.hash()
	return doc
}

// hash is Eureka's reconciliation hash: STATUS_count_ in status order.
func (e *Eureka) hash() string {
	counts := map[string]int{}
	for _, insts := range e.apps {
		for _, in := range insts {
			counts[status(in)]++
		}
	}
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		b.WriteString(st + "_" + strconv.Itoa(counts[st]) + "_")
	}
	return b.String()
}

func (e *Eureka) all(w http.ResponseWriter, r *http.Request) {
	e.FullFetches.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	apps := map[string][]any{}
	for name, insts := range e.apps {
		if len(insts) == 0 {
			continue
		}
		for _, in := range insts {
			apps[name] = append(apps[name], e.instanceJSON(name, in, "ADDED"))
		}
	}
	writeJSON(w, e.document(apps))
}

func (e *Eureka) delta(w http.ResponseWriter, r *http.Request) {
	e.DeltaFetches.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	apps := map[string][]any{}
	for _, c := range e.changes {
		apps[c.app] = append(apps[c.app], e.instanceJSON(c.app, c.inst, c.action))
	}
	writeJSON(w, e.document(apps))
}

func (e *Eureka) one(w http.ResponseWriter, r *http.Request) {
	app := strings.ToUpper(r.PathValue("app"))
	e.mu.Lock()
	defer e.mu.Unlock()
	insts, ok := e.apps[app]
	if !ok {
		http.NotFound(w, r)
		return
	}
	list := []any{}
	for _, in := range insts {
		list = append(list, e.instanceJSON(app, in, "ADDED"))
	}
	writeJSON(w, map[string]any{"application": map[string]any{"name": app, "instance": list}})
}
