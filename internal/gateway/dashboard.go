package gateway

import "time"

// ejectedUntil tells the admin dashboard until when each ejected endpoint
// is out of rotation (upstream → endpoint address → time).
func (g *Gateway) ejectedUntil() map[string]map[string]time.Time {
	out := map[string]map[string]time.Time{}
	now := time.Now().UnixNano()
	for _, c := range g.Runtime().ClusterList() {
		for _, e := range c.Endpoints() {
			if e.Ejected(now) {
				if out[c.Name()] == nil {
					out[c.Name()] = map[string]time.Time{}
				}
				out[c.Name()][e.Addr] = time.Unix(0, e.EjectedUntil())
			}
		}
	}
	return out
}
