// Package authn holds what the authentication filters (TokenAuth, JWT)
// share: where a credential is read from, the allow-list of paths that need
// none, and the mapping of identity claims to request headers, whose
// client-supplied copies are always removed.
package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
)

// Reasons of the answers the authentication filters give.
const (
	ReasonMissing     = "credential_missing"     // 401: no token in the request
	ReasonInvalid     = "credential_invalid"     // 401: unknown, expired or malformed token
	ReasonUnavailable = "credential_unavailable" // 503: the store that checks it is down
)

// Unauthorized is the 401 answer for reason.
func Unauthorized(reason string, err error) error {
	return &exchange.Error{Status: http.StatusUnauthorized, Reason: reason, Err: err}
}

// Source says where a token is: a header (with an optional scheme such as
// "Bearer" before it) and, when the header is absent, a cookie.
type Source struct {
	Header string // "" = no header
	Scheme string // "" = the whole header value is the token
	Cookie string // "" = no cookie
}

// Token returns the token in r, or "".
func (s Source) Token(r *http.Request) string {
	if s.Header != "" {
		if v := r.Header.Get(s.Header); v != "" {
			if s.Scheme == "" {
				return strings.TrimSpace(v)
			}
			if len(v) > len(s.Scheme) && strings.EqualFold(v[:len(s.Scheme)], s.Scheme) && v[len(s.Scheme)] == ' ' {
				return strings.TrimSpace(v[len(s.Scheme)+1:])
			}
			return ""
		}
	}
	if s.Cookie != "" {
		if c, err := r.Cookie(s.Cookie); err == nil {
			return c.Value
		}
	}
	return ""
}

// AllowList is a set of path patterns that pass without a credential. A
// pattern ending in "/**" matches its prefix and everything below it; any
// other pattern is matched with path.Match ("*" stays within a segment).
type AllowList []string

// NewAllowList checks the patterns.
func NewAllowList(patterns []string) (AllowList, error) {
	for _, p := range patterns {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("allow: pattern %q must start with /", p)
		}
		if _, err := path.Match(strings.TrimSuffix(p, "/**"), "/"); err != nil {
			return nil, fmt.Errorf("allow: pattern %q: %v", p, err)
		}
	}
	return AllowList(patterns), nil
}

// Match reports whether p (a cleaned request path) is allow-listed.
func (a AllowList) Match(p string) bool {
	for _, pat := range a {
		if prefix, ok := strings.CutSuffix(pat, "/**"); ok {
			if p == prefix || strings.HasPrefix(p, prefix+"/") || prefix == "" {
				return true
			}
			continue
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// A Mapping sends one claim to one request header.
type Mapping struct{ Claim, Header string }

// ParseMappings parses "claim:Header-Name" items.
func ParseMappings(items []string) ([]Mapping, error) {
	var out []Mapping
	for _, it := range items {
		c, h, ok := strings.Cut(it, ":")
		c, h = strings.TrimSpace(c), strings.TrimSpace(h)
		if !ok || c == "" || h == "" {
			return nil, fmt.Errorf("claim_headers: %q is not claim:Header-Name", it)
		}
		out = append(out, Mapping{Claim: c, Header: http.CanonicalHeaderKey(h)})
	}
	return out, nil
}

// Headers returns the header names of ms plus extra, canonical, for stripping.
func Headers(ms []Mapping, extra ...string) []string {
	out := make([]string, 0, len(ms)+len(extra))
	for _, e := range extra {
		if e != "" {
			out = append(out, http.CanonicalHeaderKey(e))
		}
	}
	for _, m := range ms {
		out = append(out, m.Header)
	}
	return out
}

// Strip removes every header in names from h: a client must never be able
// to send an identity header the gateway is responsible for.
func Strip(h http.Header, names []string) {
	for _, n := range names {
		delete(h, n)
	}
}

// Value renders a claim as a header value: strings as they are, numbers and
// booleans in JSON, lists of scalars joined by ",", anything else as JSON.
// It reports false for an absent (nil) claim. Control characters are
// dropped so a claim cannot split a header.
func Value(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			p, ok := Value(e)
			if !ok {
				continue
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ",")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s), true
}

// SourceArgs reads the header, scheme and cookie arguments.
func SourceArgs(a args.Args) (Source, error) {
	var s Source
	var err error
	if s.Header, err = a.String("header", "Authorization"); err != nil {
		return s, err
	}
	if s.Scheme, err = a.String("scheme", "Bearer"); err != nil {
		return s, err
	}
	if s.Cookie, err = a.String("cookie", ""); err != nil {
		return s, err
	}
	if s.Header == "" && s.Cookie == "" {
		return s, errors.New("header and cookie are both empty: no place to read a token from")
	}
	s.Header = http.CanonicalHeaderKey(s.Header)
	return s, nil
}
