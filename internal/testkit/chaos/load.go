package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/internal/testkit/peerproc"
)

var discardLog = log.New(io.Discard, "", 0)

// Outcome is what the client saw of one request.
type Outcome struct {
	ID      string
	Method  string
	Start   time.Time
	Elapsed time.Duration
	Status  int
	Backend string // X-Backend of the response
	// Err is the kind of client-visible error, "" for a good response:
	// "transport", "timeout", "status_NNN" or "body".
	Err    string
	Detail string
}

// Client sends requests with unique X-Request-Ids through the proxy and
// keeps every Outcome. Its methods are safe for concurrent use.
type Client struct {
	base     string
	hc       *http.Client
	body     []byte
	postFrac float64
	prefix   string
	seq      atomic.Int64

	mu       sync.Mutex
	outcomes []Outcome
	inflight sync.WaitGroup
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// MaxIdleConnsPerHost of the client's keep-alive pool; default 64.
	MaxIdleConnsPerHost int
	// Timeout of one request, after which it counts as "timeout"; default 5s.
	Timeout time.Duration
	// PostFraction of requests that are POSTs; default 0.5. Negative means 0.
	PostFraction float64
	// BodySize of a POST body; default 1024.
	BodySize int
}

var runSeq atomic.Int64

// NewClient returns a client of the proxy at addr (host:port).
func NewClient(addr string, opts ClientOptions) *Client {
	if opts.MaxIdleConnsPerHost == 0 {
		opts.MaxIdleConnsPerHost = 64
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.PostFraction == 0 {
		opts.PostFraction = 0.5
	}
	if opts.BodySize == 0 {
		opts.BodySize = 1024
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: opts.MaxIdleConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{
		base:     "http://" + addr,
		hc:       &http.Client{Transport: tr, Timeout: opts.Timeout},
		body:     bytes.Repeat([]byte("p"), opts.BodySize),
		postFrac: opts.PostFraction,
		prefix:   fmt.Sprintf("r%d-%x", runSeq.Add(1), rand.Uint32()),
	}
}

// Close waits for requests in flight and closes idle conns.
func (c *Client) Close() {
	c.inflight.Wait()
	c.hc.CloseIdleConnections()
}

// Outcomes returns a copy of all outcomes so far.
func (c *Client) Outcomes() []Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Outcome(nil), c.outcomes...)
}

func (c *Client) pickMethod() string {
	if rand.Float64() < c.postFrac {
		return http.MethodPost
	}
	return http.MethodGet
}

// Do sends one request (method GET or POST) and records its outcome.
func (c *Client) Do(ctx context.Context, method string) Outcome {
	id := c.prefix + "-" + strconv.FormatInt(c.seq.Add(1), 10)
	path := "/chaos/" + id
	o := Outcome{ID: id, Method: method, Start: time.Now()}
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		panic(err)
	}
	req.Header.Set("X-Request-Id", id)
	resp, err := c.hc.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		o.Status = resp.StatusCode
		o.Backend = resp.Header.Get("X-Backend")
		switch {
		case err != nil:
			o.Err, o.Detail = "body", err.Error()
		case resp.StatusCode != http.StatusOK:
			o.Err, o.Detail = "status_"+strconv.Itoa(resp.StatusCode), peerproc.Tail(b, 200)
		case method == http.MethodPost && string(b) != "len="+strconv.Itoa(len(c.body)):
			o.Err, o.Detail = "body", peerproc.Tail(b, 200)
		case method != http.MethodPost && (!strings.HasPrefix(string(b), "backend=") || !strings.HasSuffix(string(b), " path="+path)):
			o.Err, o.Detail = "body", peerproc.Tail(b, 200)
		}
	} else {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			o.Err = "timeout"
		} else {
			o.Err = "transport"
		}
		o.Detail = err.Error()
	}
	o.Elapsed = time.Since(o.Start)
	c.mu.Lock()
	c.outcomes = append(c.outcomes, o)
	c.mu.Unlock()
	return o
}

// OpenLoop sends rate requests per second for d, each on schedule whether
// or not earlier ones have finished (so a slow proxy cannot slow the load
// down), with the client's GET/POST mix. It returns when all have finished.
func (c *Client) OpenLoop(ctx context.Context, rate float64, d time.Duration) {
	n := int(rate * d.Seconds())
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if !sleepUntil(ctx, at) {
			break
		}
		wg.Add(1)
		c.inflight.Add(1)
		go func() {
			defer wg.Done()
			defer c.inflight.Done()
			c.Do(ctx, c.pickMethod())
		}()
	}
	wg.Wait()
}

// Bursts sends, for each gap, conns requests at nearly the same time (each
// within spread of the burst's start, so that the proxy needs about conns
// pooled upstream conns), waits for all of them, then sleeps for the gap.
// This keeps the proxy's pooled conns idle for about gap between uses, each
// conn's gap shifted by up to ±spread: the shape of the keep-alive race.
func (c *Client) Bursts(ctx context.Context, conns int, spread time.Duration, gaps []time.Duration) {
	for _, gap := range gaps {
		start := time.Now()
		var wg sync.WaitGroup
		for range conns {
			at := start
			if spread > 0 {
				at = at.Add(rand.N(spread))
			}
			wg.Add(1)
			c.inflight.Add(1)
			go func() {
				defer wg.Done()
				defer c.inflight.Done()
				if sleepUntil(ctx, at) {
					c.Do(ctx, c.pickMethod())
				}
			}()
		}
		wg.Wait()
		if !sleepUntil(ctx, time.Now().Add(gap)) {
			return
		}
	}
}

// Gaps returns n gaps uniform over [center-jitter, center+jitter], stratified
// (one per equal slice of the interval, in random order) so that even a short
// run covers the whole interval.
func Gaps(n int, center, jitter time.Duration) []time.Duration {
	gaps := make([]time.Duration, n)
	for i := range gaps {
		lo := center - jitter + time.Duration(float64(2*jitter)*float64(i)/float64(n))
		width := time.Duration(float64(2*jitter) / float64(n))
		gaps[i] = lo
		if width > 0 {
			gaps[i] += rand.N(width)
		}
	}
	rand.Shuffle(n, func(i, j int) { gaps[i], gaps[j] = gaps[j], gaps[i] })
	return gaps
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
