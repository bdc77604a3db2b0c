package route

import (
	"math"
	"net/http"
	"testing"
)

func TestWeightDistribution(t *testing.T) {
	// Spring docs: weight_high 8, weight_low 2 in group1.
	routes := []routeSpec{
		{id: "weight_high", predicates: []string{"Host=*.weighthigh.org", "Weight=group1, 8"}},
		{id: "weight_low", predicates: []string{"Host=*.weighthigh.org", "Weight=group1, 2"}},
	}
	tab := mustTable(t, routes)
	in := mustInput(t, http.MethodGet, "http://www.weighthigh.org/", nil)
	const n = 10000
	counts := map[string]int{}
	for range n {
		i, ok := matchIndex(tab, in)
		if !ok {
			t.Fatal("no route of the group matched: the group must always choose one")
		}
		counts[routes[i].id]++
	}
	if got := float64(counts["weight_high"]) / n; math.Abs(got-0.8) > 0.03 {
		t.Errorf("weight_high got %.3f of the traffic, want 0.8±0.03 (%v)", got, counts)
	}
}

func TestWeightGroupsIndependent(t *testing.T) {
	routes := []routeSpec{
		{id: "a1", predicates: []string{"Weight=a, 1"}},
		{id: "a2", predicates: []string{"Weight=a, 1"}},
		{id: "b1", predicates: []string{"Weight=b, 1"}},
		{id: "b2", predicates: []string{"Weight=b, 1"}},
	}
	tab := mustTable(t, routes)
	in := &Input{Request: &http.Request{}}
	const n = 20000
	var joint [2][2]int
	for range n {
		matchIndex(tab, in) // draws in.rand
		var a, b = -1, -1
		for i := range 2 {
			if matchAll(tab.routes[i].Predicates, in) {
				if a >= 0 {
					t.Fatal("two routes of group a chosen for one request")
				}
				a = i
			}
			if matchAll(tab.routes[2+i].Predicates, in) {
				if b >= 0 {
					t.Fatal("two routes of group b chosen for one request")
				}
				b = i
			}
		}
		if a < 0 || b < 0 {
			t.Fatal("a group chose no route")
		}
		joint[a][b]++
	}
	for a := range 2 {
		for b := range 2 {
			if got := float64(joint[a][b]) / n; math.Abs(got-0.25) > 0.02 {
				t.Errorf("P(a%d, b%d) = %.3f, want 0.25±0.02: groups are not independent (%v)", a+1, b+1, got, joint)
			}
		}
	}
}

func TestWeightZeroGetsNothing(t *testing.T) {
	routes := []routeSpec{
		{id: "off", predicates: []string{"Weight=g, 0"}},
		{id: "on", predicates: []string{"Weight=g, 5"}},
	}
	tab := mustTable(t, routes)
	in := &Input{Request: &http.Request{}}
	for range 1000 {
		if i, ok := matchIndex(tab, in); !ok || routes[i].id != "on" {
			t.Fatalf("matched %d, %v; want on", i, ok)
		}
	}
}

func TestWeightUnwired(t *testing.T) {
	if !mustPredicate(t, "Weight=g, 3", nil).Match(&Input{}) {
		t.Error("Weight outside a Table with weight 3 did not match")
	}
	if mustPredicate(t, "Weight=g, 0", nil).Match(&Input{}) {
		t.Error("Weight outside a Table with weight 0 matched")
	}
}

func TestNewTableDoesNotModifyRoutes(t *testing.T) {
	w := mustPredicate(t, "Weight=g, 1", nil)
	routes := []Route{{ID: "a", Predicates: []Predicate{w}}, {ID: "b", Predicates: []Predicate{mustPredicate(t, "Weight=g, 1", nil)}}}
	if _, err := NewTable(routes); err != nil {
		t.Fatal(err)
	}
	if routes[0].Predicates[0] != w || w.(*weightPredicate).total != 0 {
		t.Error("NewTable modified the caller's predicates")
	}
}
