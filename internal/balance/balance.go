// Package balance chooses an endpoint for a request. A Picker only keeps its
// own counters; which endpoints are eligible (ready, healthy, not ejected,
// not already tried) is decided by the cluster.
package balance

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// A Picker chooses one of eps (len(eps) >= 1) for r. It must be safe for
// concurrent use and must not allocate.
type Picker interface {
	Pick(r *http.Request, eps []*endpoint.Endpoint) *endpoint.Endpoint
}

// New returns the picker named by kind: round_robin, least_request, random
// or consistent_hash (with hashOn: header:NAME, cookie:NAME or client_ip).
func New(kind, hashOn string) (Picker, error) {
	switch kind {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "least_request":
		return LeastRequest{}, nil
	case "random":
		return Random{}, nil
	case "consistent_hash":
		return newHash(hashOn)
	}
	return nil, fmt.Errorf("unknown balancer %q (round_robin, least_request, random, consistent_hash)", kind)
}

func newHash(on string) (*Hash, error) {
	src, name, _ := strings.Cut(on, ":")
	switch src {
	case "header", "cookie":
		if name == "" {
			return nil, fmt.Errorf("hash_on %q: missing name after %q", on, src+":")
		}
		return &Hash{source: src, name: name}, nil
	case "client_ip":
		return &Hash{source: src}, nil
	}
	return nil, fmt.Errorf("hash_on %q: expected header:NAME, cookie:NAME or client_ip", on)
}
