// Package health runs active HTTP health checks against a cluster's
// endpoints. An endpoint turns unhealthy after UnhealthyThreshold failed
// checks in a row and healthy again after HealthyThreshold good ones; the
// cluster stops picking unhealthy endpoints (unless none is left). Checks use
// their own connections, never the request pools, and one check at a time per
// endpoint.
package health

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Options configure the checks.
type Options struct {
	Path               string
	Interval, Timeout  time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// Expected reports whether a status counts as healthy.
	Expected func(status int) bool
	// Scheme is "http" or "https".
	Scheme    string
	Transport http.RoundTripper // nil: a plain transport without keep-alive
}

// Target is what the checker needs of a cluster.
type Target interface {
	Endpoints() []*endpoint.Endpoint
	Refresh()
}

// Checker checks a cluster's endpoints until Stop.
type Checker struct {
	opt    Options
	target Target
	client *http.Client
	stop   context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	streak map[string]int // >0: good checks in a row; <0: failed ones
}

// Start begins checking target's endpoints every opt.Interval.
func Start(target Target, opt Options) *Checker {
	if opt.Scheme == "" {
		opt.Scheme = "http"
	}
	tr := opt.Transport
	if tr == nil {
		tr = &http.Transport{DisableKeepAlives: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checker{opt: opt, target: target, client: &http.Client{Transport: tr, Timeout: opt.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		stop: cancel, done: make(chan struct{}), streak: map[string]int{}}
	go c.loop(ctx)
	return c
}

// Stop ends the checks and waits for the loop to end.
func (c *Checker) Stop() {
	c.stop()
	<-c.done
}

func (c *Checker) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.opt.Interval)
	defer t.Stop()
	for {
		c.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round checks every endpoint once, concurrently, and applies the results.
func (c *Checker) round(ctx context.Context) {
	eps := c.target.Endpoints()
	var wg sync.WaitGroup
	changed := make(chan bool, len(eps))
	for _, e := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			changed <- c.apply(e, c.check(ctx, e))
		}()
	}
	wg.Wait()
	close(changed)
	any := false
	for ch := range changed {
		any = any || ch
	}
	if any {
		c.target.Refresh()
	}
}

func (c *Checker) check(ctx context.Context, e *endpoint.Endpoint) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opt.Scheme+"://"+e.Addr+c.opt.Path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return c.opt.Expected == nil && resp.StatusCode < 400 || c.opt.Expected != nil && c.opt.Expected(resp.StatusCode)
}

// apply updates e's streak and reports whether its health changed.
func (c *Checker) apply(e *endpoint.Endpoint, ok bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streak[e.Addr]
	switch {
	case ok && s < 0, !ok && s > 0:
		s = 0
	}
	if ok {
		s++
	} else {
		s--
	}
	c.streak[e.Addr] = s
	switch {
	case e.Unhealthy() && s >= max(c.opt.HealthyThreshold, 1):
		e.SetUnhealthy(false)
		return true
	case !e.Unhealthy() && -s >= max(c.opt.UnhealthyThreshold, 1):
		e.SetUnhealthy(true)
		return true
	}
	return false
}
