package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

// Scenarios 18–21: the upstream cases of issue 13 (SCENARIOS.md 12a, 12b,
// and the rolling restart with abrupt and RST exits).

// 18 (SCENARIOS.md 12a). Backends refuse uploads over 1 MiB after reading
// 64 KiB of them: 413, a JSON body, Connection: close. Clients send 4 MiB
// uploads slowly (64 KiB every 10 ms), 4 at a time, beside 100 req/s of the
// usual mix. Every upload must get the backend's 413 and its JSON, long
// before the upload would have ended, and no upload may reach a backend twice.
func earlyAnswer(e *Env, p Proxy) (*Result, error) {
	rs, err := e.Replicas(2, backend.Options{EarlyAnswerOver: 1 << 20, EarlyAnswerRead: 64 << 10, Latency: 2 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{})
	n := max(8, int(e.cfg.scaled(24*time.Second)/time.Second))
	var (
		mu   sync.Mutex
		outs []Outcome
		wg   sync.WaitGroup
	)
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				o := upload(e.ctx, addr, fmt.Sprintf("%s-up%d", c.prefix, i))
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range n {
			select {
			case work <- i:
			case <-e.ctx.Done():
				return
			}
		}
	}()
	c.OpenLoop(e.ctx, 100, e.cfg.scaled(6*time.Second))
	wg.Wait()
	res := e.check(c)
	res.Sent += len(outs)
	res.OK += len(outs)
	seen := map[string]int{}
	for _, r := range e.Records() {
		seen[r.ID]++
	}
	var slowest time.Duration
	var firstFailure string
	for _, o := range outs {
		slowest = max(slowest, o.Elapsed)
		if seen[o.ID] > 1 {
			res.DupPOSTs++
		}
		if o.Err != "" {
			res.OK--
			res.Errors[o.Err]++
			res.FailedPOSTs++
			if firstFailure == "" {
				firstFailure = o.Err + ": " + o.Detail
			}
		}
	}
	if firstFailure != "" {
		res.notef("first failed upload: %s", firstFailure)
	}
	res.Pass = passStrict(res)
	res.notef("%d uploads of 4 MiB at 6.4 MB/s answered 413 after 64 KiB; slowest answer %v (a whole upload takes 640ms); 100 req/s beside", len(outs), slowest.Round(time.Millisecond))
	return res, nil
}

// uploadSize is scenario 18's upload; it is sent in uploadChunk pieces
// every uploadPause.
const (
	uploadSize  = 4 << 20
	uploadChunk = 64 << 10
	uploadPause = 10 * time.Millisecond
)

// slowUpload is a request body sent at a steady, slow pace. left is atomic:
// the transport's writer may still be reading when the answer is checked.
type slowUpload struct {
	ctx  context.Context
	left atomic.Int64
}

func (u *slowUpload) Read(p []byte) (int, error) {
	left := int(u.left.Load())
	if left <= 0 {
		return 0, io.EOF
	}
	if !sleepUntil(u.ctx, time.Now().Add(uploadPause)) {
		return 0, u.ctx.Err()
	}
	n := min(len(p), uploadChunk, left)
	for i := range p[:n] {
		p[i] = 'u'
	}
	u.left.Add(int64(-n))
	return n, nil
}

// upload sends one slow upload on a connection of its own and checks that
// the backend's early 413 comes back whole, before the upload could have ended.
func upload(ctx context.Context, addr, id string) Outcome {
	o := Outcome{ID: id, Method: http.MethodPost, Start: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := &slowUpload{ctx: ctx}
	body.left.Store(uploadSize)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/upload/"+id, io.NopCloser(body))
	req.ContentLength = uploadSize
	req.Header.Set("X-Request-Id", id)
	req.Header.Set("Content-Type", "application/octet-stream")
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	o.Elapsed = time.Since(o.Start)
	if err != nil {
		o.Err, o.Detail = "transport", err.Error()
		return o
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.Status, o.Backend = resp.StatusCode, resp.Header.Get("X-Backend")
	switch {
	case err != nil:
		o.Err, o.Detail = "body", err.Error()
	case resp.StatusCode != http.StatusRequestEntityTooLarge:
		o.Err, o.Detail = "status_"+strconv.Itoa(resp.StatusCode), string(b)
	case string(b) != backend.EarlyAnswer || resp.Header.Get("Content-Type") != "application/json":
		o.Err, o.Detail = "body", string(b)
	case body.left.Load() == 0:
		o.Err, o.Detail = "late", "the answer came after the whole upload"
	}
	return o
}

// 19 (SCENARIOS.md 12b). Backends close each keep-alive connection 15 ms
// after its 25th response, which says nothing of it (uWSGI and gunicorn
// max-requests), reading and discarding what arrives meanwhile: a request
// sent in that window gets a FIN and no RST. The delay is longer than the
// relays' round trip (2–10 ms), as a few ms are longer than a data centre's.
// 300 req/s of the usual mix over 2 backends.
func silentCloseAfterN(e *Env, p Proxy) (*Result, error) {
	const n = 25
	rs, c, err := e.setup(p, 2, backend.Options{SilentCloseAfter: n, SilentCloseDelay: 15 * time.Millisecond, Latency: 2 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(10*time.Second))
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("backends close a conn 15ms after its %dth response, unannounced; upstream conns opened: %d", n, rs[0].Relay.Accepted()+rs[1].Relay.Accepted())
	return res, nil
}

// 20, 21. Three backends restart one by one on the same addresses under
// 300 req/s of the usual mix, each exiting at once: its connections end
// with a FIN (abrupt) or an RST (reset), whatever they were doing. A POST
// the dying backend had processed (or read and dropped) may fail: no proxy
// can know its fate. With abrupt exits every other request must succeed.
// With RST exits a POST already on its way when the RST left is lost too
// (an RST alone proves nothing), so the bar is scenario 7's: 0 failed GETs,
// 0 duplicates, and no failed POST sent after the exit settled (exit + 2 ×
// max latency + 100 ms); the notes count the rest.
func rollingRestart(style backend.ShutdownStyle) func(e *Env, p Proxy) (*Result, error) {
	return func(e *Env, p Proxy) (*Result, error) {
		rs, c, err := e.setup(p, 3, backend.Options{Latency: 5 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		var waits []func()
		exits := make([]time.Time, len(rs))
		for i, r := range rs {
			waits = append(waits, e.after(e.cfg.scaled(time.Duration(2+3*i)*time.Second), func() {
				exits[i] = time.Now()
				r.Relay.SetDown(true) // a dead process's port refuses connects
				r.Backend.Restart(style, 300*time.Millisecond)
				r.Relay.SetDown(false)
			}))
		}
		c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(11*time.Second))
		for _, w := range waits {
			w()
		}
		res := e.check(c)
		late := 0
		for _, o := range c.Outcomes() {
			if o.Err == "" || o.Method != http.MethodPost {
				continue
			}
			for _, at := range exits {
				if !at.IsZero() && o.Start.After(at.Add(2*e.cfg.LatencyMax+100*time.Millisecond)) && o.Start.Before(at.Add(time.Second)) {
					late++
				}
			}
		}
		accounted := res.Errored() == res.FailedPOSTsProcessed+res.DroppedPOSTs
		if style == backend.Reset {
			res.Pass = res.FailedGETs == 0 && res.DupPOSTs == 0 && late == 0
		} else {
			res.Pass = accounted && res.DupPOSTs == 0
		}
		res.notef("b1, b2, b3 exit (%s) and restart on the same address at %v, %v, %v, down 300ms; every failure processed or dropped by the dying backend: %v; failed POSTs sent after an exit settled: %d",
			style, e.cfg.scaled(2*time.Second), e.cfg.scaled(5*time.Second), e.cfg.scaled(8*time.Second), accounted, late)
		return res, nil
	}
}
