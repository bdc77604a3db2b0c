package balance

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

func eps(weights ...int) []*endpoint.Endpoint {
	out := make([]*endpoint.Endpoint, len(weights))
	for i, w := range weights {
		out[i] = endpoint.New(endpoint.Spec{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: w}, nil, time.Time{})
	}
	return out
}

func count(p Picker, r *http.Request, set []*endpoint.Endpoint, n int) map[string]int {
	m := map[string]int{}
	for i := 0; i < n; i++ {
		m[p.Pick(r, set).Addr]++
	}
	return m
}

func TestWeights(t *testing.T) {
	set := eps(1, 3)
	r, _ := http.NewRequest("GET", "http://x/", nil)
	tests := []struct {
		name   string
		picker Picker
		tol    int
	}{
		{"round_robin exact", &RoundRobin{}, 0},
		{"random", Random{}, 400},
		{"least_request with nothing in flight", LeastRequest{}, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := count(tc.picker, r, set, 4000)
			if d := m[set[1].Addr] - 3000; d < -tc.tol || d > tc.tol {
				t.Fatalf("weight 3 of 4 got %d of 4000 (want 3000±%d)", m[set[1].Addr], tc.tol)
			}
		})
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	set := eps(1, 1)
	for i := 0; i < 10; i++ {
		set[0].Begin()
	}
	r, _ := http.NewRequest("GET", "http://x/", nil)
	m := count(LeastRequest{}, r, set, 1000)
	// The busy endpoint wins only when both draws pick it (1 in 4).
	if m[set[0].Addr] > 350 {
		t.Fatalf("busy endpoint picked %d of 1000", m[set[0].Addr])
	}
}

func TestHashIsStickyAndMovesLittle(t *testing.T) {
	h, err := New("consistent_hash", "header:X-User")
	if err != nil {
		t.Fatal(err)
	}
	set := eps(1, 1, 1, 1)
	owner := map[string]string{}
	for i := 0; i < 400; i++ {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		key := fmt.Sprint("user-", i)
		r.Header.Set("X-User", key)
		a := h.Pick(r, set).Addr
		if b := h.Pick(r, set).Addr; a != b {
			t.Fatalf("key %s went to %s then %s", key, a, b)
		}
		owner[key] = a
	}
	// Remove one endpoint: only its keys move.
	smaller := set[:3]
	moved := 0
	for key, was := range owner {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		r.Header.Set("X-User", key)
		now := h.Pick(r, smaller).Addr
		if now != was {
			moved++
			if was != set[3].Addr {
				t.Fatalf("key %s moved from %s (still present) to %s", key, was, now)
			}
		}
	}
	if moved < 50 || moved > 150 {
		t.Fatalf("moved %d of 400 keys when 1 of 4 endpoints left (want about 100)", moved)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct{ kind, on string }{
		{"fastest", ""},
		{"consistent_hash", "header:"},
		{"consistent_hash", "body:x"},
	}
	for _, tc := range tests {
		t.Run(tc.kind+" "+tc.on, func(t *testing.T) {
			if _, err := New(tc.kind, tc.on); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
