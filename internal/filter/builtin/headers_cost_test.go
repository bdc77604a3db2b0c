package builtin

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// headerFilters are the header-rewriting filters as a config typically uses
// them: constant values, one header each (SecureHeaders: its defaults).
var headerFilters = []string{
	"AddRequestHeader=X-Gateway, sluice",
	"SetRequestHeader=X-Tenant, acme",
	"SetRequestHeader=Accept, application/json",
	"RemoveRequestHeader=Cookie",
	"AddResponseHeader=X-Served-By, sluice",
	"SetResponseHeader=Cache-Control, no-store",
	"RemoveResponseHeader=Server",
	"DedupeResponseHeader=Vary",
	"SecureHeaders",
	"AddRequestHeadersIfNotPresent=X-Gateway:sluice,Accept:application/json",
}

func mustFilter(t testing.TB, s string) filter.Filter {
	t.Helper()
	name, rest, _ := strings.Cut(s, "=")
	sp := args.Spec{Name: name}
	for v := range strings.SplitSeq(rest, ",") {
		if v = strings.TrimSpace(v); v != "" {
			sp.Positional = append(sp.Positional, v)
		}
	}
	f := Filters()[name]
	a, err := sp.Bind(f.Fields)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	flt, err := f.New(a, &filter.Env{RouteID: "r"})
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return flt
}

// headerBench is one request and its response, reset to the same headers
// before every run without allocating (clear keeps a map's storage), so
// that what a run allocates is the filter's own.
type headerBench struct {
	req  *http.Request
	resp *http.Response
}

func newHeaderBench() *headerBench {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/a", nil)
	ex := &exchange.Exchange{RouteID: "r"}
	return &headerBench{
		req:  r.WithContext(exchange.With(context.Background(), ex)),
		resp: &http.Response{StatusCode: 200, Header: http.Header{}},
	}
}

var (
	reqAccept  = []string{"*/*"}
	reqCookie  = []string{"session=1"}
	respType   = []string{"text/plain"}
	respServer = []string{"nginx"}
	respVary   = []string{"Accept", "Accept"}
)

func (h *headerBench) reset() {
	clear(h.req.Header)
	h.req.Header["Accept"] = reqAccept
	h.req.Header["Cookie"] = reqCookie
	clear(h.resp.Header)
	h.resp.Header["Content-Type"] = respType
	h.resp.Header["Server"] = respServer
	h.resp.Header["Vary"] = respVary
}

func (h *headerBench) RoundTrip(*http.Request) (*http.Response, error) { return h.resp, nil }

func (h *headerBench) run(t testing.TB, f filter.Filter) {
	h.reset()
	if _, err := f.RoundTrip(h.req, h); err != nil {
		t.Fatal(err)
	}
}

// TestHeaderFiltersDoNotAllocate holds the header-rewriting filters with
// constant values to zero allocations per request.
func TestHeaderFiltersDoNotAllocate(t *testing.T) {
	for _, s := range headerFilters {
		f, h := mustFilter(t, s), newHeaderBench()
		h.run(t, f) // the maps grow to their size once
		if allocs := testing.AllocsPerRun(100, func() { h.run(t, f) }); allocs != 0 {
			t.Errorf("%s allocates %v times per request, want 0", s, allocs)
		}
	}
}

// BenchmarkHeaderFilters runs each header-rewriting filter on a request and
// its response.
//
//	go test -run '^$' -bench HeaderFilters -benchmem ./internal/filter/builtin
func BenchmarkHeaderFilters(b *testing.B) {
	for _, s := range headerFilters {
		b.Run(s, func(b *testing.B) {
			f, h := mustFilter(b, s), newHeaderBench()
			b.ReportAllocs()
			for b.Loop() {
				h.run(b, f)
			}
		})
	}
}

// A constant header value's slice is shared by every request, so no filter
// may write into a header's values in place: RewriteResponseHeader after
// SetResponseHeader must rewrite each response's value once, never the
// shared one. Two goroutines run the chain, so that the race detector
// also sees any write into a shared array.
func TestSharedHeaderValuesAreNotRewritten(t *testing.T) {
	filters := []filter.Filter{ // response filters run from the last
		mustFilter(t, "AddResponseHeader=X-A, c"),
		mustFilter(t, "DedupeResponseHeader=X-A"),
		mustFilter(t, "AddResponseHeader=X-A, b"),
		mustFilter(t, "RewriteResponseHeader=X-A, a, aa"),
		mustFilter(t, "SetResponseHeader=X-A, a"),
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range 20 {
				h := newHeaderBench()
				h.reset()
				resp, err := filter.Chain(filters, h).RoundTrip(h.req)
				if err != nil {
					t.Error(err)
					return
				}
				if got, want := resp.Header["X-A"], []string{"aa", "c"}; !slices.Equal(got, want) {
					t.Errorf("response %d: X-A = %q, want %q", i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
