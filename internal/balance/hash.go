package balance

import (
	"hash/maphash"
	"net"
	"net/http"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Hash sends requests with the same key (a header, a cookie or the client
// IP) to the same endpoint, using rendezvous hashing: each request goes to
// the endpoint with the highest hash of (key, address) scaled by weight, so
// adding or removing an endpoint moves only the keys that must move.
// Requests without a key are spread at random.
type Hash struct {
	source, name string
}

var seed = maphash.MakeSeed()

func (h *Hash) Pick(r *http.Request, eps []*endpoint.Endpoint) *endpoint.Endpoint {
	key, ok := h.key(r)
	if !ok {
		return Random{}.Pick(r, eps)
	}
	var best *endpoint.Endpoint
	var bestScore uint64
	for _, e := range eps {
		var mh maphash.Hash
		mh.SetSeed(seed)
		mh.WriteString(key)
		mh.WriteByte(0)
		mh.WriteString(e.Addr)
		s := mh.Sum64()
		if w := e.Weight(); w > 1 {
			// Highest of w draws approximates weight-proportional rendezvous.
			s = s / uint64(w) * uint64(w) // keep deterministic
			for i := 1; i < w && i < 16; i++ {
				mh.WriteByte(byte(i))
				if v := mh.Sum64(); v > s {
					s = v
				}
			}
		}
		if best == nil || s > bestScore {
			best, bestScore = e, s
		}
	}
	return best
}

func (h *Hash) key(r *http.Request) (string, bool) {
	switch h.source {
	case "header":
		v := r.Header.Get(h.name)
		return v, v != ""
	case "cookie":
		c, err := r.Cookie(h.name)
		if err != nil || c.Value == "" {
			return "", false
		}
		return c.Value, true
	default:
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr, r.RemoteAddr != ""
		}
		return host, true
	}
}
