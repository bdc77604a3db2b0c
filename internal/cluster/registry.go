package cluster

import (
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/pool"
)

// Registry keeps the live endpoints of one upstream by address, across the
// clusters a reload makes for it: a changed upstream gets a new Cluster,
// but an endpoint whose address is still listed keeps its Endpoint (pool
// and learned connection limits, in-flight and failure counters, ejection,
// health) when its pool options are unchanged. When they changed, the
// address gets a new pool (a pool's options are fixed) and keeps the rest
// of its state. A pool is drained once no cluster lists its endpoint.
type Registry struct {
	mu sync.Mutex
	// current is, by address, the endpoint a cluster listing it gets.
	current map[string]entry
	// refs counts the clusters listing each endpoint (current or replaced).
	refs map[*endpoint.Endpoint]int
	// recreated lists the addresses whose pool was made anew because its
	// options changed, since the last TakeRecreated.
	recreated []string
}

type entry struct {
	ep      *endpoint.Endpoint
	poolKey any
	// replaced is the entry this one replaced (other pool options), current
	// again if this one is let go first (a reload that failed to build).
	replaced *entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{current: map[string]entry{}, refs: map[*endpoint.Endpoint]int{}}
}

// acquire returns the endpoint for s to a cluster whose pools are made by
// newPool with options poolKey (comparable).
func (r *Registry) acquire(s endpoint.Spec, poolKey any, newPool func(string) *pool.Pool, now time.Time) *endpoint.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.current[s.Addr]
	if ok && cur.poolKey == poolKey {
		r.refs[cur.ep]++
		return cur.ep
	}
	ep := endpoint.New(s, newPool(s.Addr), now)
	if ok {
		// Same address, other pool options: a new pool, the rest of the
		// state kept. Clusters still listing the old endpoint drain its
		// pool when they let it go.
		ep.Inherit(cur.ep)
		r.recreated = append(r.recreated, s.Addr)
	}
	e := entry{ep: ep, poolKey: poolKey}
	if ok {
		e.replaced = &cur
	}
	r.current[s.Addr] = e
	r.refs[ep] = 1
	return ep
}

// TakeRecreated returns the addresses whose pool was made anew since the
// last call, because a cluster with other pool options listed them.
func (r *Registry) TakeRecreated() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.recreated
	r.recreated = nil
	return out
}

// release gives up a cluster's hold on ep; the last one drains its pool.
func (r *Registry) release(ep *endpoint.Endpoint) {
	r.mu.Lock()
	r.refs[ep]--
	last := r.refs[ep] <= 0
	if last {
		delete(r.refs, ep)
		if cur := r.current[ep.Addr]; cur.ep == ep {
			delete(r.current, ep.Addr)
			if old := cur.replaced; old != nil && r.refs[old.ep] > 0 {
				r.current[ep.Addr] = entry{ep: old.ep, poolKey: old.poolKey}
			}
		}
	}
	r.mu.Unlock()
	if last {
		drainEndpoint(ep)
	}
}

func drainEndpoint(ep *endpoint.Endpoint) {
	ep.SetDraining(true)
	ep.Pool.Drain(nil)
}
