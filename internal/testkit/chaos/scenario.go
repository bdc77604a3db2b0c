package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/backend"
)

// A Scenario is one failure of /work/shared/SCENARIOS.md, reproduced with
// real sockets on 127.0.0.1: backends, a latency relay in front of each, the
// proxy under test, and a client that counts every error.
type Scenario struct {
	ID   int
	Name string
	run  func(e *Env, p Proxy) (*Result, error)
}

// Scenarios returns the scenarios in order: 1–11, 16 and 18–21.
func Scenarios() []Scenario {
	return []Scenario{
		{1, "keep-alive boundary race", keepAliveRace},
		{2, "advertised keep-alive", advertisedKeepAlive},
		{3, "max requests per conn", maxRequests},
		{4, "graceful SIGTERM under load", gracefulSigterm},
		{5, "backend dies, stays down", backendDies},
		{6, "restart on same address", restartSameAddress},
		{7, "abrupt crash under load", abruptCrash},
		{8, "endpoint draining", endpointDraining},
		{9, "HTTP/2 GOAWAY", h2GoAway},
		{10, "scale-out 2→6", scaleOut},
		{11, "silent middlebox", silentMiddlebox},
		{16, "slow backend, adaptive limit", slowBackend},
		{18, "early answer during an upload", earlyAnswer},
		{19, "silent close after N requests", silentCloseAfterN},
		{20, "rolling restart, abrupt exits", rollingRestart(backend.Abrupt)},
		{21, "rolling restart, RST exits", rollingRestart(backend.Reset)},
	}
}

// SelectScenarios parses "1,6,7" (or "" for all) into scenarios.
func SelectScenarios(list string) ([]Scenario, error) {
	all := Scenarios()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var out []Scenario
	for _, f := range strings.Split(list, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.ID == id })
		if err != nil || i < 0 {
			ids := make([]string, len(all))
			for j, s := range all {
				ids[j] = strconv.Itoa(s.ID)
			}
			return nil, fmt.Errorf("no scenario %q (want one of %s)", f, strings.Join(ids, ","))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Run runs s against p and returns its result; setup errors are in
// Result.Err. Everything the scenario started is stopped before Run returns.
func Run(ctx context.Context, cfg Config, s Scenario, p Proxy) *Result {
	cfg.defaults()
	start := time.Now()
	var res *Result
	e, err := newEnv(ctx, &cfg)
	if err == nil {
		res, err = s.run(e, p)
		e.close()
	}
	if err != nil {
		res = &Result{Err: err, Errors: map[string]int{}}
	}
	res.Scenario, res.Name, res.Proxy = s.ID, s.Name, p.Name()
	res.Elapsed = time.Since(start)
	return res
}

// check waits for c's requests and matches them with the backends' records.
func (e *Env) check(c *Client) *Result {
	c.Close()
	return Check(c.Outcomes(), e.Records())
}

// setup starts n in-process replicas and the proxy in front of their relays.
func (e *Env) setup(p Proxy, n int, opts backend.Options) ([]*Replica, *Client, error) {
	rs, err := e.Replicas(n, opts)
	if err != nil {
		return nil, nil, err
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, nil, err
	}
	return rs, e.Client(addr, ClientOptions{}), nil
}

// rounds is how many keep-alive periods of length t fit in about 15s
// (scaled), at least 4.
func (e *Env) rounds(t time.Duration) int {
	return max(4, int(e.cfg.scaled(15*time.Second)/max(t, 100*time.Millisecond)))
}

// burstSpread spreads the requests of one burst (see Client.Bursts).
const burstSpread = 20 * time.Millisecond

// 1. B closes idle conns after exactly T with no Keep-Alive header; the
// client reuses the proxy's pooled conns with gaps of T ± jitter. Bursts of
// 16 over 8 backends keep 2 conns per backend busy, so that even a pool of
// 2 idle conns per host (Go's default) is reused at every burst.
func keepAliveRace(e *Env, p Proxy) (*Result, error) {
	t := e.cfg.KeepAlive
	_, c, err := e.setup(p, 8, backend.Options{IdleTimeout: t})
	if err != nil {
		return nil, err
	}
	n := e.rounds(t)
	c.Bursts(e.ctx, 16, burstSpread, Gaps(n, t, e.cfg.GapJitter))
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("T=%v; %d bursts of 16 over 8 backends, gaps T±%v", t, n, e.cfg.GapJitter)
	return res, nil
}

// 2. As 1, but B advertises Keep-Alive: timeout=N and closes after N.
func advertisedKeepAlive(e *Env, p Proxy) (*Result, error) {
	n := *e.cfg.AdvertisedTimeout
	secs := int(n / time.Second)
	opts := backend.Options{KeepAliveHeader: "timeout=" + strconv.Itoa(secs), IdleTimeout: n}
	center, jitter := n, e.cfg.GapJitter
	if secs == 0 {
		// timeout=0: the backend closes a conn as soon as it is idle.
		opts.IdleTimeout = time.Millisecond
		center, jitter = 25*time.Millisecond, 25*time.Millisecond
	}
	_, c, err := e.setup(p, 8, opts)
	if err != nil {
		return nil, err
	}
	rounds := e.rounds(center)
	c.Bursts(e.ctx, 16, burstSpread, Gaps(rounds, center, jitter))
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("Keep-Alive: timeout=%d; %d bursts of 16 over 8 backends, gaps %v±%v", secs, rounds, center, jitter)
	return res, nil
}

// 3. B answers the 100th request on a conn with Connection: close.
func maxRequests(e *Env, p Proxy) (*Result, error) {
	rs, c, err := e.setup(p, 2, backend.Options{MaxRequestsPerConn: 100, Latency: 2 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(10*time.Second))
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("upstream conns opened: %d", rs[0].Relay.Accepted()+rs[1].Relay.Accepted())
	return res, nil
}

// 4. One of 3 process replicas gets SIGTERM under load and shuts down
// gracefully (stops accepting, closes idle conns at once, finishes in-flight).
func gracefulSigterm(e *Env, p Proxy) (*Result, error) {
	rs, err := e.ProcessReplicas(3, backend.Options{Latency: 60 * time.Millisecond}, backend.Graceful)
	if err != nil {
		return nil, err
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{})
	victim := rs[1]
	var exitErr error
	wait := e.after(e.cfg.scaled(4*time.Second), func() {
		victim.Relay.SetDown(true) // the process no longer accepts
		victim.Process.Signal(syscall.SIGTERM)
		exitErr = victim.Process.Wait(10 * time.Second)
	})
	c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(12*time.Second))
	wait()
	res := e.check(c)
	res.Pass = passButDropped(res)
	res.notef("SIGTERM to %s at %v; backend latency 60ms", victim.Name, e.cfg.scaled(4*time.Second))
	if exitErr != nil {
		res.notef("%v", exitErr)
	}
	return res, nil
}

// 5. One of 3 replicas exits and stays down; the proxy's config is static.
func backendDies(e *Env, p Proxy) (*Result, error) {
	rs, c, err := e.setup(p, 3, backend.Options{Latency: 5 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	victim := rs[2]
	wait := e.after(e.cfg.scaled(3*time.Second), func() {
		victim.Relay.SetDown(true) // connects are refused from now on
		victim.Backend.Shutdown(e.ctx, backend.Graceful)
	})
	c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(10*time.Second))
	wait()
	res := e.check(c)
	res.Pass = passButDropped(res)
	res.notef("%s exits at %v, connects refused after", victim.Name, e.cfg.scaled(3*time.Second))
	return res, nil
}

// 6. B1 restarts on the same address within 1s. Its old conns vanish
// without FIN (as when the process's network namespace is replaced), so
// every stale pooled conn is answered with RST when reused.
func restartSameAddress(e *Env, p Proxy) (*Result, error) {
	rs, c, err := e.setup(p, 2, backend.Options{Latency: 2 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	// Fill the proxy's pool.
	c.Bursts(e.ctx, 24, 0, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond})
	victim := rs[0]
	wait := e.after(e.cfg.scaled(2*time.Second), func() {
		victim.Relay.SetDown(true)
		victim.Relay.ForgetFlows()
		victim.Backend.Restart(backend.Abrupt, 500*time.Millisecond)
		victim.Relay.SetDown(false)
	})
	c.OpenLoop(e.ctx, 100, e.cfg.scaled(8*time.Second))
	wait()
	res := e.check(c)
	res.Pass = res.FailedGETs == 0 && res.FailedPOSTs <= 1 && res.DupPOSTs == 0
	res.notef("%s restarts at %v, down 500ms, old conns lost silently; 100 req/s", victim.Name, e.cfg.scaled(2*time.Second))
	return res, nil
}

// 7. One of 3 process replicas is SIGKILLed under load.
func abruptCrash(e *Env, p Proxy) (*Result, error) {
	rs, err := e.ProcessReplicas(3, backend.Options{Latency: 30 * time.Millisecond}, backend.Graceful)
	if err != nil {
		return nil, err
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{})
	victim := rs[1]
	var killedAt time.Time
	wait := e.after(e.cfg.scaled(4*time.Second), func() {
		killedAt = time.Now()
		victim.Relay.SetDown(true)
		victim.Process.Kill()
	})
	c.OpenLoop(e.ctx, e.cfg.Rate, e.cfg.scaled(10*time.Second))
	wait()
	res := e.check(c)
	// A POST in flight at the crash may fail (it may have been processed);
	// anything sent once the crash is visible must succeed.
	settled := killedAt.Add(2*e.cfg.LatencyMax + 100*time.Millisecond)
	late := 0
	for _, o := range c.Outcomes() {
		if o.Err != "" && o.Method == http.MethodPost && !o.Start.Before(settled) {
			late++
		}
	}
	res.Pass = res.FailedGETs == 0 && res.DupPOSTs == 0 && late == 0
	res.notef("SIGKILL of %s at %v; failed POSTs sent after the crash settled: %d", victim.Name, e.cfg.scaled(4*time.Second), late)
	return res, nil
}

// 8. Discovery marks one endpoint terminating while it keeps serving; later
// every endpoint is terminating.
func endpointDraining(e *Env, p Proxy) (*Result, error) {
	es, ok := p.(EndpointSetter)
	if !ok {
		return &Result{Skipped: "proxy has no endpoint API (EndpointSetter)", Errors: map[string]int{}}, nil
	}
	rs, err := e.Replicas(3, backend.Options{Latency: 5 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{})
	draining := rs[2]
	eps := func(terminating ...*Replica) []Endpoint {
		var out []Endpoint
		for _, r := range rs {
			term := false
			for _, t := range terminating {
				term = term || t == r
			}
			out = append(out, Endpoint{Addr: r.Relay.Addr(), Ready: !term, Serving: true, Terminating: term})
		}
		return out
	}
	var markedAt time.Time
	var setErr error
	openAtShutdown := -1
	waitMark := e.after(e.cfg.scaled(3*time.Second), func() {
		markedAt = time.Now()
		setErr = es.SetEndpoints(addr, eps(draining))
	})
	waitShutdown := e.after(e.cfg.scaled(7*time.Second), func() {
		openAtShutdown = draining.Relay.Conns()
		draining.Relay.SetDown(true)
		draining.Backend.Shutdown(e.ctx, backend.Graceful)
		// Every endpoint left is terminating too: keep using them.
		err := es.SetEndpoints(addr, eps(rs...)[:2])
		if setErr == nil {
			setErr = err
		}
	})
	c.OpenLoop(e.ctx, 200, e.cfg.scaled(11*time.Second))
	waitMark()
	waitShutdown()
	res := e.check(c)
	if setErr != nil {
		return nil, setErr
	}
	late := 0
	for _, r := range draining.Backend.Processed() {
		if r.At.After(markedAt.Add(100 * time.Millisecond)) {
			late++
		}
	}
	res.Pass = passStrict(res) && late == 0 && openAtShutdown == 0
	res.notef("new requests to the draining endpoint: %d; its conns still open %v later: %d", late, e.cfg.scaled(4*time.Second), openAtShutdown)
	return res, nil
}

// 9. An h2c backend sends GOAWAY (graceful restart) while the proxy
// multiplexes about 100 streams over its conns.
func h2GoAway(e *Env, p Proxy) (*Result, error) {
	hp, ok := p.(H2CProxy)
	if !ok {
		return &Result{Skipped: "proxy cannot speak h2c upstream (H2CProxy)", Errors: map[string]int{}}, nil
	}
	rs, err := e.Replicas(2, backend.Options{H2C: true, MaxConcurrentStreams: 250, Latency: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	addr, stop, err := hp.StartH2C(e.ctx, Addrs(rs))
	if err != nil {
		return nil, err
	}
	e.defer_(stop)
	c := e.Client(addr, ClientOptions{MaxIdleConnsPerHost: 256})
	victim := rs[0]
	wait := e.after(e.cfg.scaled(3*time.Second), func() {
		victim.Relay.SetDown(true)
		victim.Backend.Restart(backend.Graceful, 300*time.Millisecond)
		victim.Relay.SetDown(false)
	})
	c.OpenLoop(e.ctx, 500, e.cfg.scaled(8*time.Second))
	wait()
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("GOAWAY from %s's graceful restart at %v (GOAWAY after N streams: not implemented)", victim.Name, e.cfg.scaled(3*time.Second))
	return res, nil
}

// 10. One upstream address (a ClusterIP) whose backends grow from 2 to 6.
func scaleOut(e *Env, p Proxy) (*Result, error) {
	var bs []*backend.Backend
	var targets []string
	for i := range 6 {
		b, err := e.Backend(backend.Options{Name: "b" + strconv.Itoa(i+1), Latency: 5 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
		targets = append(targets, b.Addr())
	}
	vip, err := e.Relay(targets[0])
	if err != nil {
		return nil, err
	}
	vip.SetTargets(targets[:2])
	addr, err := e.StartProxy(p, []string{vip.Addr()})
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{})
	wait := e.after(e.cfg.scaled(3*time.Second), func() { vip.SetTargets(targets) })
	start := time.Now()
	total := e.cfg.scaled(15 * time.Second)
	c.OpenLoop(e.ctx, 200, total)
	wait()
	res := e.check(c)
	from := start.Add(total * 2 / 3)
	window := byBackend(c.Outcomes(), from, start.Add(total))
	sum := 0
	for _, n := range window {
		sum += n
	}
	starved := 0
	for _, b := range bs[2:] {
		if sum == 0 || float64(window[b.Name()]) < 0.05*float64(sum) {
			starved++
		}
	}
	res.Pass = passStrict(res) && starved == 0
	res.notef("last third by backend: %s; new replicas with <5%%: %d", formatCounts(window), starved)
	return res, nil
}

// 11. A middlebox silently forgets flows idle for L; the proxy must not send
// requests into a dead flow (they would hang).
func silentMiddlebox(e *Env, p Proxy) (*Result, error) {
	l := e.cfg.MiddleboxIdle
	rs, err := e.Replicas(2, backend.Options{})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		r.Relay.SetDropIdle(l)
	}
	addr, err := e.StartProxy(p, Addrs(rs))
	if err != nil {
		return nil, err
	}
	c := e.Client(addr, ClientOptions{Timeout: 3 * time.Second})
	rounds := max(3, int(e.cfg.Scale*3))
	gaps := make([]time.Duration, rounds)
	for i := range gaps {
		gaps[i] = l + 500*time.Millisecond
	}
	c.Bursts(e.ctx, 8, burstSpread, gaps)
	res := e.check(c)
	res.Pass = passStrict(res)
	res.notef("L=%v (real middleboxes: 240–900s); a request over 3s counts as a timeout", l)
	return res, nil
}
