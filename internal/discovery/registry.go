package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Helpers shared by the registry sources (Nacos, Eureka): HTTP with bounded
// answers, server lists, and checks on what a registry says an instance is.

// maxRegistryBody bounds an answer from a registry: a registry is trusted
// to list instances, not to make the gateway allocate without limit.
const maxRegistryBody = 16 << 20

// getJSON fetches u and decodes its JSON answer into v.
func getJSON(ctx context.Context, client *http.Client, req *http.Request, v any) error {
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = defaultRegistryClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRegistryBody+1))
	if err != nil {
		return fmt.Errorf("%s: %w", req.URL.Redacted(), err)
	}
	if len(body) > maxRegistryBody {
		return fmt.Errorf("%s: answer larger than %d bytes", req.URL.Redacted(), maxRegistryBody)
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: req.URL.Redacted(), code: resp.StatusCode, body: strings.TrimSpace(string(body[:min(len(body), 200)]))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// statusError is an answer other than 200 OK.
type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("%s: status %d: %s", e.url, e.code, e.body) }

func httpStatus(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// defaultRegistryClient talks to registries: short timeouts, its own pool.
var defaultRegistryClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil, // registries are reached directly
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	},
}

// serverURL makes a base URL of a registry address written host, host:port
// or scheme://host[:port][/path], with defaultPort when none is given.
func serverURL(addr string, defaultPort int) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q is not a registry address like host:port or http://host:port", addr)
	}
	if u.Port() == "" && defaultPort > 0 {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(defaultPort))
	}
	return u, nil
}

// instanceAddr checks what a registry says an instance's host and port are
// and joins them; ok is false for anything that is not an IP address or a
// DNS name with a port from 1 to 65535.
func instanceAddr(host string, port int) (string, bool) {
	if port < 1 || port > 65535 || host == "" || len(host) > 253 {
		return "", false
	}
	if net.ParseIP(host) == nil && !isDNSName(host) {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), true
}

// isDNSName reports whether s is a host name: dot-separated labels of
// letters, digits, '-' and '_'.
func isDNSName(s string) bool {
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// scaledWeight maps a registry's weight (a float; 1 is the usual default)
// onto the integer weights of endpoint.Spec, keeping two decimals: 1 → 100,
// 0.5 → 50, 2 → 200. ok is false for weight ≤ 0, which registries use to
// mean "no traffic".
func scaledWeight(w float64) (int, bool) {
	if !(w > 0) || math.IsInf(w, 0) { // also NaN
		return 0, false
	}
	return int(min(max(math.Round(w*100), 1), 1_000_000)), true
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
