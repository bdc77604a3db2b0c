package ratelimit

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/exchange"
)

func TestLocal(t *testing.T) {
	type step struct {
		after     time.Duration
		requested int
		allowed   bool
		remaining int64
	}
	tests := []struct {
		desc           string
		rate, capacity int
		steps          []step
	}{
		{desc: "burst then refuse", rate: 1, capacity: 3, steps: []step{
			{0, 1, true, 2}, {0, 1, true, 1}, {0, 1, true, 0}, {0, 1, false, 0},
		}},
		{desc: "refills at the rate", rate: 10, capacity: 10, steps: []step{
			{0, 10, true, 0}, {50 * time.Millisecond, 1, false, 0}, {50 * time.Millisecond, 1, true, 0}, {time.Second, 5, true, 5},
		}},
		{desc: "never above capacity", rate: 100, capacity: 5, steps: []step{
			{time.Hour, 5, true, 0}, {time.Hour, 6, false, 5},
		}},
		{desc: "requested tokens", rate: 1, capacity: 10, steps: []step{
			{0, 4, true, 6}, {0, 4, true, 2}, {0, 4, false, 2}, {2 * time.Second, 4, true, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			now := time.Unix(1000, 0)
			l := NewLocal(tc.rate, tc.capacity)
			l.now = func() time.Time { return now }
			for i, s := range tc.steps {
				now = now.Add(s.after)
				ok, rem, err := l.Allow(nil, "k", s.requested)
				if err != nil || ok != s.allowed || rem != s.remaining {
					t.Errorf("step %d: Allow = %v, %d, %v; want %v, %d", i, ok, rem, err, s.allowed, s.remaining)
				}
			}
		})
	}
}

func TestLocalKeysAreSeparateAndBounded(t *testing.T) {
	l := NewLocal(1, 1)
	if ok, _, _ := l.Allow(nil, "a", 1); !ok {
		t.Fatal("a refused")
	}
	if ok, _, _ := l.Allow(nil, "b", 1); !ok {
		t.Fatal("b refused: buckets are shared")
	}
	for i := range MaxKeys + 10 {
		l.Allow(nil, string(rune(i))+"x", 1)
	}
	if n := len(l.buckets); n > MaxKeys {
		t.Errorf("%d buckets kept, want at most %d", n, MaxKeys)
	}
}

func TestKeyResolver(t *testing.T) {
	tests := []struct {
		desc    string
		spec    string
		header  http.Header
		client  string
		vars    []exchange.Var
		want    string
		wantErr bool
	}{
		{desc: "client ip", spec: "client_ip", client: "203.0.113.9", want: "client_ip:203.0.113.9"},
		{desc: "client ip unknown", spec: "client_ip", want: ""},
		{desc: "header", spec: "header:X-Api-Key", header: http.Header{"X-Api-Key": {"k1"}}, want: "header:k1"},
		{desc: "header absent", spec: "header:X-Api-Key", want: ""},
		{desc: "path variable", spec: "path:tenant", vars: []exchange.Var{{Name: "tenant", Value: "acme"}}, want: "path:acme"},
		{desc: "user default header", spec: "user", header: http.Header{"X-User-Id": {"u1"}}, want: "user:u1"},
		{desc: "user custom header", spec: "user:X-Sub", header: http.Header{"X-Sub": {"s"}}, want: "user:s"},
		{desc: "spring principal resolver", spec: "#{@principalNameKeyResolver}", header: http.Header{"X-User-Id": {"u1"}}, want: "user:u1"},
		{desc: "other spring bean", spec: "#{@myResolver}", wantErr: true},
		{desc: "header without name", spec: "header", wantErr: true},
		{desc: "unknown", spec: "cookie:x", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			k, err := ParseKeyResolver(tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			ex := &exchange.Exchange{Vars: tc.vars}
			if tc.client != "" {
				ex.Client = netip.MustParseAddr(tc.client)
			}
			r, _ := http.NewRequestWithContext(exchange.With(context.Background(), ex), "GET", "http://x/", nil)
			if tc.header != nil {
				r.Header = tc.header
			}
			if got := k.Key(r); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
		})
	}
}
