package route

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

// A Table is an immutable, ordered set of routes. It is safe for concurrent
// use; a config reload builds a new Table and swaps it in.
//
// Routes are indexed by the first path segment their Path predicate fixes
// ("/svc1/**" → "svc1"). Routes whose Path patterns start with a wildcard or
// variable, or that have no Path predicate, are candidates for every request.
// Match visits only the candidates for the request's first segment, merged
// with the catch-all routes, in rank order. The merge happens during Match
// (two sorted lists, no allocation) rather than at build time, so memory
// stays linear in the number of routes instead of keys × catch-all routes.
type Table struct {
	routes   []Route // the caller's routes, with Weight predicates wired
	byRank   []int   // route index of each rank
	byFirst  map[string][]int32
	catchAll []int32 // ranks, ascending
	weighted bool    // some route has a Weight predicate
}

// NewTable compiles routes. Routes are tried by Order, then by their index in
// routes (declaration order). It returns an error for inconsistent Weight
// groups (a group whose weights are all 0, or a route with two Weight
// predicates of one group). routes is not modified or retained.
func NewTable(routes []Route) (*Table, error) {
	t := &Table{
		routes:  make([]Route, len(routes)),
		byFirst: map[string][]int32{},
	}
	for i, r := range routes {
		r.Predicates = slices.Clone(r.Predicates)
		r.index = i
		t.routes[i] = r
	}
	var err error
	if t.weighted, err = wireWeights(t.routes); err != nil {
		return nil, err
	}

	t.byRank = make([]int, len(routes))
	for i := range t.byRank {
		t.byRank[i] = i
	}
	slices.SortStableFunc(t.byRank, func(a, b int) int {
		return cmp.Compare(t.routes[a].Order, t.routes[b].Order)
	})
	for rank, i := range t.byRank {
		keys, ok := indexKeys(t.routes[i])
		if !ok {
			t.catchAll = append(t.catchAll, int32(rank))
			continue
		}
		for _, k := range keys {
			if l := t.byFirst[k]; len(l) == 0 || l[len(l)-1] != int32(rank) {
				t.byFirst[k] = append(l, int32(rank))
			}
		}
	}
	return t, nil
}

// indexKeys returns the first path segments a route can match, from its
// first Path predicate whose patterns all fix it.
func indexKeys(r Route) ([]string, bool) {
	for _, p := range r.Predicates {
		if pp, ok := p.(*pathPredicate); ok {
			if keys, ok := pp.firstLiterals(); ok {
				slices.Sort(keys)
				return slices.Compact(keys), true
			}
		}
	}
	return nil, false
}

// Match returns the first route whose predicates all match in (the table's
// own copy: do not modify it), and fills in.Vars with that route's
// variables. in must have been filled by Prepare. Match does not allocate
// unless a predicate does (regexp captures mixed with text in one segment,
// encoded query keys).
func (t *Table) Match(in *Input) (*Route, bool) {
	if t.weighted {
		in.rand = rand.Uint64()
	}
	indexed := t.byFirst[firstSegment(in.Path)]
	all := t.catchAll
	for len(indexed) > 0 || len(all) > 0 {
		var rank int32
		if len(all) == 0 || len(indexed) > 0 && indexed[0] < all[0] {
			rank, indexed = indexed[0], indexed[1:]
		} else {
			rank, all = all[0], all[1:]
		}
		i := t.byRank[rank]
		in.Vars.n = 0
		if matchAll(t.routes[i].Predicates, in) {
			return &t.routes[i], true
		}
	}
	in.Vars.n = 0
	return nil, false
}

func matchAll(preds []Predicate, in *Input) bool {
	for _, p := range preds {
		if !p.Match(in) {
			return false
		}
	}
	return true
}

// Len returns the number of routes.
func (t *Table) Len() int { return len(t.routes) }
