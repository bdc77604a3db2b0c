package balance

import (
	"math/rand/v2"
	"net/http"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// LeastRequest draws two endpoints at random (weighted) and takes the one
// with fewer requests in flight, relative to its weight: the power of two
// choices, which avoids the herding of a strict least-loaded pick.
type LeastRequest struct{}

func (LeastRequest) Pick(_ *http.Request, eps []*endpoint.Endpoint) *endpoint.Endpoint {
	if len(eps) == 1 {
		return eps[0]
	}
	a := weighted(eps, rand.Uint64())
	b := weighted(eps, rand.Uint64())
	if a == b {
		return a
	}
	// Compare inflight/weight without division.
	if b.InFlight()*int64(a.Weight()) < a.InFlight()*int64(b.Weight()) {
		return b
	}
	return a
}
