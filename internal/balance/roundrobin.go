package balance

import (
	"net/http"
	"sync/atomic"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// RoundRobin takes endpoints in turn; an endpoint of weight w gets w turns
// in a cycle of the total weight.
type RoundRobin struct{ next atomic.Uint64 }

func (rr *RoundRobin) Pick(_ *http.Request, eps []*endpoint.Endpoint) *endpoint.Endpoint {
	n := rr.next.Add(1) - 1
	total := 0
	for _, e := range eps {
		total += e.Weight()
	}
	if total == len(eps) {
		return eps[n%uint64(len(eps))]
	}
	k := int(n % uint64(total))
	for _, e := range eps {
		if k < e.Weight() {
			return e
		}
		k -= e.Weight()
	}
	return eps[0]
}
