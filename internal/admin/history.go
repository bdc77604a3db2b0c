package admin

import (
	"strings"
	"sync"
	"time"
)

// ReloadRecord is one config reload as the dashboard shows it.
type ReloadRecord struct {
	Time   time.Time `json:"time"`
	Result string    `json:"result"`           // success or failure
	Errors []string  `json:"errors,omitempty"` // one per problem: FILE:LINE:COL: field: message
}

// reloadHistory keeps the last few reloads, newest first.
type reloadHistory struct {
	mu   sync.Mutex
	last []ReloadRecord
}

const keptReloads = 10

// RecordReload remembers the outcome of a reload (err nil: success) for
// the dashboard. Safe for concurrent use.
func (a *Admin) RecordReload(err error) {
	r := ReloadRecord{Time: time.Now().UTC(), Result: "success"}
	if err != nil {
		r.Result = "failure"
		for l := range strings.SplitSeq(err.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" && len(r.Errors) < 50 {
				r.Errors = append(r.Errors, l)
			}
		}
	}
	a.reloads.mu.Lock()
	defer a.reloads.mu.Unlock()
	a.reloads.last = append([]ReloadRecord{r}, a.reloads.last[:min(len(a.reloads.last), keptReloads-1)]...)
}

func (a *Admin) recentReloads() []ReloadRecord {
	a.reloads.mu.Lock()
	defer a.reloads.mu.Unlock()
	return append([]ReloadRecord{}, a.reloads.last...)
}
