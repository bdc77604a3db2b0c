package cache

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type backend struct{ hits int }

func (b *backend) RoundTrip(r *http.Request) (*http.Response, error) {
	b.hits++
	body := strings.Repeat("x", 300)
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

func get(t *testing.T, c *Cache, be *backend, path string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "http://h"+path, nil)
	resp, err := c.RoundTrip(r, be)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestEvictsLeastRecentlyUsed: three 300-byte answers (each counted with
// its overhead) do not fit in 1600 bytes; the least recently used goes.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(time.Minute, 1600, func() time.Time { return now })
	be := &backend{}
	get(t, c, be, "/a")
	get(t, c, be, "/b")
	get(t, c, be, "/a") // hit: /a is now the most recent
	get(t, c, be, "/c") // evicts /b
	if c.Len() != 2 || be.hits != 3 {
		t.Fatalf("len %d, hits %d", c.Len(), be.hits)
	}
	get(t, c, be, "/a")
	if be.hits != 3 {
		t.Errorf("/a was evicted")
	}
	get(t, c, be, "/b")
	if be.hits != 4 {
		t.Errorf("/b was still cached")
	}
	if c.used > c.max {
		t.Errorf("used %d > max %d", c.used, c.max)
	}
}

func TestUnreadBodyIsNotStored(t *testing.T) {
	c := New(time.Minute, 1<<20, time.Now)
	be := &backend{}
	r, _ := http.NewRequest(http.MethodGet, "http://h/a", nil)
	resp, _ := c.RoundTrip(r, be)
	resp.Body.Close() // the client went away before the end
	if c.Len() != 0 {
		t.Errorf("a body never read to its end was stored")
	}
}
