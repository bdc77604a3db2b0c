// Package cache is Spring Cloud Gateway's LocalResponseCache filter: an
// in-memory cache of the responses to bodiless GET requests, bounded by a
// total size and a time to live, that respects Cache-Control.
package cache

import (
	"bytes"
	"container/list"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// Factory is LocalResponseCache=timeToLive,size, e.g. LocalResponseCache=30m,500MB.
// timeToLive defaults to 5m, as in Spring; size (all bodies together)
// defaults to 10MB, where Spring has no bound.
var Factory = filter.Factory{Fields: []string{"timeToLive", "size"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	ttl, err := a.Duration("timeToLive", 5*time.Minute)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("timeToLive: must be more than 0")
	}
	size, err := a.Size("size", 10<<20)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, fmt.Errorf("size: must be more than 0")
	}
	return New(ttl, size, time.Now), nil
}}

// Cache is the filter. It is safe for concurrent use.
type Cache struct {
	ttl  time.Duration
	max  int64
	now  func() time.Time
	mu   sync.Mutex
	used int64
	lru  *list.List // of *entry, most recent first
	byID map[string]*list.Element
}

type entry struct {
	key     string
	status  int
	header  http.Header
	body    []byte
	stored  time.Time
	expires time.Time
	vary    []string // request headers the response varies on
}

func (e *entry) size() int64 { return int64(len(e.body) + len(e.key) + 256) }

// New returns a cache of responses kept for ttl, of at most max bytes in all.
func New(ttl time.Duration, max int64, now func() time.Time) *Cache {
	return &Cache{ttl: ttl, max: max, now: now, lru: list.New(), byID: map[string]*list.Element{}}
}

// cacheable statuses, as in Spring: 200, 206 and 301 (206 is never stored
// here: a request with Range bypasses the cache).
func cacheableStatus(s int) bool { return s == http.StatusOK || s == http.StatusMovedPermanently }

func (c *Cache) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	if r.Method != http.MethodGet || (r.Body != nil && r.Body != http.NoBody) || r.Header.Get("Range") != "" {
		return next.RoundTrip(r)
	}
	reqCC := directives(r.Header.Values("Cache-Control"))
	host := r.Host
	if ex := exchange.From(r.Context()); ex != nil {
		host = ex.Host // the outbound request's Host is the endpoint's
	}
	key := host + " " + r.URL.RequestURI()
	if !reqCC.has("no-cache") && !reqCC.has("no-store") {
		if resp := c.lookup(key, r); resp != nil {
			return resp, nil
		}
	}
	resp, err := next.RoundTrip(r)
	if err != nil || reqCC.has("no-store") || !cacheableStatus(resp.StatusCode) {
		return resp, err
	}
	cc := directives(resp.Header.Values("Cache-Control"))
	if cc.has("no-store") || cc.has("private") || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Vary") == "*" {
		return resp, nil
	}
	if resp.ContentLength > c.max {
		return resp, nil
	}
	ttl := c.ttl
	if s, ok := cc.value("max-age"); ok {
		if n, err := strconv.Atoi(s); err == nil && time.Duration(n)*time.Second < ttl {
			ttl = time.Duration(n) * time.Second
		}
	}
	if ttl <= 0 {
		return resp, nil
	}
	e := &entry{key: key, status: resp.StatusCode, header: resp.Header.Clone(), vary: varyOn(resp.Header)}
	e.vary = varyValues(e.vary, r.Header)
	resp.Body = &recorder{rc: resp.Body, limit: c.max, done: func(b []byte) {
		e.body = b
		e.stored = c.now()
		e.expires = e.stored.Add(ttl)
		c.store(e)
	}}
	return resp, nil
}

// varyOn lists the request headers named by Vary.
func varyOn(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, http.CanonicalHeaderKey(n))
			}
		}
	}
	return out
}

// varyValues pairs each name with the request's value: [name, value, ...].
func varyValues(names []string, h http.Header) []string {
	out := make([]string, 0, 2*len(names))
	for _, n := range names {
		out = append(out, n, strings.Join(h.Values(n), ","))
	}
	return out
}

func (c *Cache) lookup(key string, r *http.Request) *http.Response {
	c.mu.Lock()
	el := c.byID[key]
	if el == nil {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*entry)
	now := c.now()
	if !now.Before(e.expires) {
		c.remove(el)
		c.mu.Unlock()
		return nil
	}
	for i := 0; i < len(e.vary); i += 2 {
		if strings.Join(r.Header.Values(e.vary[i]), ",") != e.vary[i+1] {
			c.mu.Unlock()
			return nil
		}
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	h := e.header.Clone()
	h.Set("Cache-Control", "max-age="+strconv.Itoa(int(e.expires.Sub(now).Seconds())))
	h.Set("Age", strconv.Itoa(int(now.Sub(e.stored).Seconds())))
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	h.Del("Transfer-Encoding")
	return &http.Response{
		Status: strconv.Itoa(e.status) + " " + http.StatusText(e.status), StatusCode: e.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: r,
	}
}

func (c *Cache) store(e *entry) {
	if e.size() > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byID[e.key]; old != nil {
		c.remove(old)
	}
	c.byID[e.key] = c.lru.PushFront(e)
	c.used += e.size()
	for c.used > c.max {
		c.remove(c.lru.Back())
	}
}

func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.byID, e.key)
	c.used -= e.size()
}

// Len returns the number of responses held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// recorder passes a body through and keeps a copy, up to limit; a body read
// to its end within the limit is handed to done.
type recorder struct {
	rc    io.ReadCloser
	buf   []byte
	limit int64
	over  bool
	done  func([]byte)
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if !r.over {
		if int64(len(r.buf)+n) > r.limit {
			r.over, r.buf = true, nil
		} else {
			r.buf = append(r.buf, p[:n]...)
		}
	}
	if err == io.EOF && !r.over && r.done != nil {
		r.done(r.buf)
		r.done = nil
	}
	return n, err
}

func (r *recorder) Close() error { return r.rc.Close() }

// ccDirectives are Cache-Control directives, lower-cased.
type ccDirectives []string

func directives(values []string) ccDirectives {
	var out ccDirectives
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
				out = append(out, d)
			}
		}
	}
	return out
}

func (d ccDirectives) has(name string) bool {
	for _, s := range d {
		if s == name || strings.HasPrefix(s, name+"=") {
			return true
		}
	}
	return false
}

func (d ccDirectives) value(name string) (string, bool) {
	for _, s := range d {
		if v, ok := strings.CutPrefix(s, name+"="); ok {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}
