package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// remote is a JWKS fetched from a URL. The first request that needs it
// fetches it (bounded by timeout; concurrent requests wait for that one
// fetch, and after a failure requests fail at once for retryAfter). From then
// on requests use the cached set, and one background fetch at a time
// refreshes it when it is older than refresh or when a token names an
// unknown key (at most once per minInterval).
type remote struct {
	url         string
	client      *http.Client
	timeout     time.Duration
	refresh     time.Duration
	minInterval time.Duration
	log         *slog.Logger

	keys       atomic.Pointer[keySet]
	refreshing atomic.Bool
	lastTry    atomic.Int64 // unix nanos of the last background fetch

	mu        sync.Mutex // serialises the first fetch
	failedAt  time.Time
	failedErr error
}

const retryAfter = time.Second

func (r *remote) get(ctx context.Context) (*keySet, error) {
	if ks := r.keys.Load(); ks != nil {
		if time.Since(ks.fetched) > r.refresh {
			r.refreshAsync()
		}
		return ks, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ks := r.keys.Load(); ks != nil {
		return ks, nil
	}
	if time.Since(r.failedAt) < retryAfter {
		return nil, r.failedErr
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ks, err := r.fetch(ctx)
	if err != nil {
		r.failedAt, r.failedErr = time.Now(), err
		return nil, err
	}
	r.keys.Store(ks)
	return ks, nil
}

// unknownKid asks for a refresh because a token named a key the set lacks.
func (r *remote) unknownKid() {
	if time.Since(time.Unix(0, r.lastTry.Load())) >= r.minInterval {
		r.refreshAsync()
	}
}

func (r *remote) refreshAsync() {
	if !r.refreshing.CompareAndSwap(false, true) {
		return
	}
	r.lastTry.Store(time.Now().UnixNano())
	go func() {
		defer r.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		ks, err := r.fetch(ctx)
		if err != nil {
			r.log.Warn("JWKS refresh failed; keeping the keys we have", "url", r.url, "error", err)
			return
		}
		r.keys.Store(ks)
	}()
}

func (r *remote) fetch(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	ks.fetched = time.Now()
	return ks, nil
}

var errUnavailable = errors.New("JWKS unavailable")
