// Package discovery finds the endpoints of an upstream and publishes them to
// whoever asked, as a whole set every time (level-triggered, never deltas):
// a consumer that missed a publication loses nothing, because the next one
// says everything. Sources are static lists, DNS names, watched files,
// Kubernetes EndpointSlices and the service registries Spring Cloud
// applications register with: Nacos, Eureka and Consul. No source runs on
// the request path.
//
// A registry source that cannot reach its registry keeps the last set it
// published, counts and logs the outage (Stats), and recovers by itself.
// An instance the registry reports as going away (unhealthy, disabled,
// down, terminating) is published as draining: it gets no new requests and
// its idle connections are closed, while its requests in flight finish.
package discovery

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// A Source watches the endpoints of one upstream. Run publishes the full
// endpoint set each time it may have changed and returns when ctx ends. A
// source that cannot reach its origin keeps quiet: the last set it published
// stays in force.
type Source interface {
	Run(ctx context.Context, publish func([]endpoint.Spec))
}

// Static is a fixed endpoint list, published once.
type Static []endpoint.Spec

// Run publishes the list and waits for ctx to end.
func (s Static) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	publish(slices.Clone(s))
	<-ctx.Done()
}

// Running is a source started by Start.
type Running struct {
	src    Source
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs src in its own goroutine until Stop.
func Start(src Source, publish func([]endpoint.Spec)) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{src: src, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		src.Run(ctx, publish)
	}()
	return r
}

// Stop ends the source and returns once it can publish no more.
func (r *Running) Stop() {
	r.cancel()
	<-r.done
}

// Stats returns the counters of a registry source, or nil for a source
// without them.
func (r *Running) Stats() *Stats {
	if s, ok := r.src.(interface{ stats() *Stats }); ok {
		return s.stats()
	}
	return nil
}

// sortSpecs orders specs by address, so that equal sets compare equal.
func sortSpecs(specs []endpoint.Spec) {
	slices.SortFunc(specs, func(a, b endpoint.Spec) int { return strings.Compare(a.Addr, b.Addr) })
}

// dedup publishes a set only when it differs from the last one published.
type dedup struct {
	mu      sync.Mutex
	last    []endpoint.Spec
	started bool
	publish func([]endpoint.Spec)
	stats   *Stats // counts what is published; may be nil
}

func (d *dedup) send(specs []endpoint.Spec) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sortSpecs(specs)
	if d.started && slices.Equal(d.last, specs) {
		return
	}
	d.started, d.last = true, specs
	draining := 0
	for _, s := range specs {
		if s.Draining {
			draining++
		}
	}
	d.stats.published(len(specs)-draining, draining)
	d.publish(slices.Clone(specs))
}
