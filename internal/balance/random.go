package balance

import (
	"math/rand/v2"
	"net/http"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Random picks an endpoint at random, in proportion to its weight.
type Random struct{}

func (Random) Pick(_ *http.Request, eps []*endpoint.Endpoint) *endpoint.Endpoint {
	return weighted(eps, rand.Uint64())
}

// weighted maps a random number onto eps in proportion to their weights.
func weighted(eps []*endpoint.Endpoint, x uint64) *endpoint.Endpoint {
	total := 0
	for _, e := range eps {
		total += e.Weight()
	}
	k := int(x % uint64(total))
	for _, e := range eps {
		if k < e.Weight() {
			return e
		}
		k -= e.Weight()
	}
	return eps[len(eps)-1]
}
