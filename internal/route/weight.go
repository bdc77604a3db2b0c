package route

import (
	"fmt"
	"hash/fnv"
	"math/bits"

	"github.com/sluice-gw/sluice/internal/args"
)

// weightPredicate is Weight: routes of one group share its traffic in
// proportion to their weights. For each request, Table.Match draws one
// random value; each group maps it (mixed with the group's seed, so groups
// choose independently) to one point of [0, total), and the route whose
// range holds that point is the group's choice for this request.
//
// NewTable wires a copy of each Weight predicate with its group's ranges.
// Outside a Table the predicate acts as a group of one: it matches if its
// weight is positive.
type weightPredicate struct {
	group  string
	weight uint64

	// Set by NewTable.
	seed   uint64
	lo, hi uint64 // this route's range
	total  uint64 // sum of the group's weights; 0 if unwired
}

func newWeight(a args.Args) (Predicate, error) {
	group, err := a.Required("group")
	if err != nil {
		return nil, err
	}
	w, err := a.Required("weight")
	if err != nil {
		return nil, err
	}
	n, err := a.Int("weight", 0)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("weight %q is not a non-negative integer", w)
	}
	return &weightPredicate{group: group, weight: uint64(n)}, nil
}

func (p *weightPredicate) Match(in *Input) bool {
	if p.total == 0 {
		return p.weight > 0
	}
	point, _ := bits.Mul64(mix64(in.rand^p.seed), p.total)
	return p.lo <= point && point < p.hi
}

// mix64 is the SplitMix64 finalizer: every input bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func groupSeed(group string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(group))
	return h.Sum64()
}

// wireWeights replaces each Weight predicate in routes (a copy owned by the
// Table) with a wired copy. It reports whether any route has one.
func wireWeights(routes []Route) (bool, error) {
	type member struct{ route, pred int }
	groups := map[string][]member{}
	var order []string
	for i, r := range routes {
		seen := map[string]bool{}
		for j, p := range r.Predicates {
			w, ok := p.(*weightPredicate)
			if !ok {
				continue
			}
			if seen[w.group] {
				return false, fmt.Errorf("route %q: two Weight predicates for group %q", r.ID, w.group)
			}
			seen[w.group] = true
			if _, ok := groups[w.group]; !ok {
				order = append(order, w.group)
			}
			groups[w.group] = append(groups[w.group], member{i, j})
		}
	}
	for _, g := range order {
		var total uint64
		for _, m := range groups[g] {
			total += routes[m.route].Predicates[m.pred].(*weightPredicate).weight
		}
		if total == 0 {
			return false, fmt.Errorf("Weight group %q: all weights are 0", g)
		}
		seed, lo := groupSeed(g), uint64(0)
		for _, m := range groups[g] {
			w := *routes[m.route].Predicates[m.pred].(*weightPredicate)
			w.seed, w.lo, w.hi, w.total = seed, lo, lo+w.weight, total
			lo = w.hi
			routes[m.route].Predicates[m.pred] = &w
		}
	}
	return len(order) > 0, nil
}
