package chaos

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

// Result is the verdict of one scenario against one proxy.
type Result struct {
	Scenario int
	Name     string
	Proxy    string

	Sent        int
	OK          int
	Errors      map[string]int // by Outcome.Err kind
	FailedGETs  int
	FailedPOSTs int
	// DupPOSTs is the number of POST ids processed more than once, by any
	// backends together.
	DupPOSTs int
	// FailedPOSTsProcessed failed on the client but were processed by a
	// backend: allowed when the proxy cannot know (scenario 7).
	FailedPOSTsProcessed int
	// LostPOSTs failed on the client and no backend processed them.
	LostPOSTs int
	// DroppedPOSTs failed on the client because the backend received them
	// (read, or still waiting in its socket) and dropped them unhandled while
	// shutting down or exiting (see backend.Record.Dropped): not processed,
	// and not provably so to any proxy.
	DroppedPOSTs int
	// RetriedGETs were processed more than once (a silent retry; allowed).
	RetriedGETs int

	// Failures samples the failed requests (method, id, error and the
	// body's tail), for the log of a run that did not pass.
	Failures []string

	Pass    bool
	Skipped string // why the scenario did not run, if it did not
	Err     error  // the scenario could not be set up
	Notes   []string
	Elapsed time.Duration
}

// Errored is the number of client-visible errors of any kind.
func (r *Result) Errored() int { return r.Sent - r.OK }

func (r *Result) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

const maxFailureSamples = 10

// Check counts outcomes and matches them with the union of all backends'
// records. It does not decide Pass.
func Check(outs []Outcome, recs []backend.Record) *Result {
	r := &Result{Errors: make(map[string]int), Sent: len(outs)}
	seen := make(map[string]int, len(recs))
	dropped := make(map[string]bool)
	for _, rec := range recs {
		if rec.Dropped {
			dropped[rec.Method+" "+rec.ID] = true
			continue
		}
		seen[rec.Method+" "+rec.ID]++
	}
	for key, n := range seen {
		if n < 2 {
			continue
		}
		if strings.HasPrefix(key, http.MethodPost+" ") {
			r.DupPOSTs++
		} else {
			r.RetriedGETs++
		}
	}
	for _, o := range outs {
		if o.Err == "" {
			r.OK++
			continue
		}
		r.Errors[o.Err]++
		if len(r.Failures) < maxFailureSamples {
			r.Failures = append(r.Failures, fmt.Sprintf("%s %s at %s: %s %s", o.Method, o.ID, o.Start.Format("15:04:05.000"), o.Err, o.Detail))
		}
		if o.Method != http.MethodPost {
			r.FailedGETs++
			continue
		}
		r.FailedPOSTs++
		switch {
		case seen[o.Method+" "+o.ID] > 0:
			r.FailedPOSTsProcessed++
		case dropped[o.Method+" "+o.ID]:
			r.DroppedPOSTs++
		default:
			r.LostPOSTs++
		}
	}
	return r
}

// passStrict is the default verdict: no client-visible error, no duplicate.
func passStrict(r *Result) bool { return r.Errored() == 0 && r.DupPOSTs == 0 }

// passButDropped is passStrict, except for POSTs that the backend itself read
// and dropped unhandled while shutting down (counted and reported apart):
// the backend discarded them after reading them, so no proxy can prove they
// were not processed, and replaying them would risk a duplicate.
func passButDropped(r *Result) bool {
	if r.DroppedPOSTs > 0 {
		r.notef("%d POST(s) read and dropped unhandled by the backend's own shutdown", r.DroppedPOSTs)
	}
	return r.Errored()-r.DroppedPOSTs == 0 && r.DupPOSTs == 0
}

// ErrorSummary is e.g. "status_502=3 transport=1", or "0".
func (r *Result) ErrorSummary() string {
	if len(r.Errors) == 0 {
		return "0"
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, r.Errors[k])
	}
	return fmt.Sprintf("%d (%s)", r.Errored(), b.String())
}

// Verdict is "pass", "FAIL", "skip" or "error".
func (r *Result) Verdict() string {
	switch {
	case r.Err != nil:
		return "error"
	case r.Skipped != "":
		return "skip"
	case r.Pass:
		return "pass"
	}
	return "FAIL"
}

// byBackend counts good responses per X-Backend among outs started in
// [from, to).
func byBackend(outs []Outcome, from, to time.Time) map[string]int {
	m := make(map[string]int)
	for _, o := range outs {
		if o.Err == "" && !o.Start.Before(from) && o.Start.Before(to) {
			m[o.Backend]++
		}
	}
	return m
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// Markdown renders results as a table, one row per scenario and proxy.
func Markdown(results []*Result) string {
	var b strings.Builder
	b.WriteString("| # | scenario | proxy | requests | errors | dup POSTs | failed POSTs processed / dropped by backend / lost | result | notes |\n")
	b.WriteString("|---|---|---|---:|---|---:|---|---|---|\n")
	for _, r := range results {
		notes := strings.Join(r.Notes, "; ")
		switch {
		case r.Err != nil:
			notes = r.Err.Error()
		case r.Skipped != "":
			notes = r.Skipped
		}
		notes = strings.ReplaceAll(strings.ReplaceAll(notes, "|", "/"), "\n", " ")
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %d | %d / %d / %d | %s | %s |\n",
			r.Scenario, r.Name, r.Proxy, r.Sent, r.ErrorSummary(), r.DupPOSTs,
			r.FailedPOSTsProcessed, r.DroppedPOSTs, r.LostPOSTs, r.Verdict(), notes)
	}
	return b.String()
}
