package inproc_test

import (
	"context"
	"testing"

	"github.com/sluice-gw/sluice/internal/testkit/chaos"
	"github.com/sluice-gw/sluice/internal/testkit/chaos/inproc"

	"github.com/sluice-gw/sluice/internal/testkit/testlock"
)

func scenario(t *testing.T, id int) chaos.Scenario {
	list, err := chaos.SelectScenarios("16")
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("scenario %d: %v %v", id, list, err)
	}
	return list[0]
}

// Scenario 16 with the slow phase scaled to 7s (60s × 0.12): about 17s.
// Its time bounds (shedding within 1.5s, recovery within 5s, no request over
// the client's 5s timeout) can be broken by a CPU-starved shared machine
// (seen once under -race beside other packages' tests): a second run is
// made if the first fails, and one pass is required.
func TestScenario16SlowBackend(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("runs for about 17s, 35s if run twice")
	}
	var res *chaos.Result
	for run := 1; run <= 2; run++ {
		res = chaos.Run(context.Background(), chaos.Config{Scale: 0.12}, scenario(t, 16), &inproc.Sluice{})
		t.Logf("run %d:\n%s", run, chaos.Markdown([]*chaos.Result{res}))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if res.Pass {
			return
		}
	}
	t.Fatalf("scenario 16: %s, errors %s", res.Verdict(), res.ErrorSummary())
}

// noLimit is Sluice without any concurrency limit, passed off as adaptive:
// scenario 16 must fail it, or its checks prove nothing.
type noLimit struct{ inproc.Sluice }

func (p *noLimit) StartAdaptive(ctx context.Context, upstreams []string) (string, func(), error) {
	return p.Start(ctx, upstreams)
}

func (p *noLimit) ConcurrencyLimit(string) (int, bool) { return 0, false }

func TestScenario16FailsWithoutLimit(t *testing.T) {
	testlock.Realtime(t)
	if testing.Short() {
		t.Skip("runs for about 13s")
	}
	res := chaos.Run(context.Background(), chaos.Config{Scale: 0.05}, scenario(t, 16), &noLimit{})
	t.Logf("\n%s", chaos.Markdown([]*chaos.Result{res}))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Pass {
		t.Fatal("scenario 16 passed a proxy that sheds nothing")
	}
}
