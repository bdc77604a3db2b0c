package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
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
	url string // "" until discovered from issuer
	// issuer, when url is "", is an OpenID Provider whose discovery document
	// (ISSUER/.well-known/openid-configuration) names the JWKS (jwks_uri).
	issuer      string
	urlMu       sync.Mutex
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
			r.log.Warn("JWKS refresh failed; keeping the keys we have", "error", err)
			return
		}
		r.keys.Store(ks)
	}()
}

// jwksURL returns the JWKS URL, discovering it the first time if needed.
// The discovery document must name the configured issuer, as OpenID
// Connect Discovery 1.0 section 4.3 requires (and Spring Security checks).
func (r *remote) jwksURL(ctx context.Context) (string, error) {
	r.urlMu.Lock()
	defer r.urlMu.Unlock()
	if r.url != "" {
		return r.url, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OIDC discovery %s: status %s", req.URL, resp.Status)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: %w", req.URL, err)
	}
	if doc.Issuer != r.issuer {
		return "", fmt.Errorf("OIDC discovery %s: issuer %q, want %q", req.URL, doc.Issuer, r.issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("OIDC discovery %s: jwks_uri %q is not an http(s) URL", req.URL, doc.JWKSURI)
	}
	r.url = doc.JWKSURI
	return r.url, nil
}

func (r *remote) fetch(ctx context.Context) (*keySet, error) {
	jwks, err := r.jwksURL(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwks, nil)
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
