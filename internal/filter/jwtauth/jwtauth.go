// Package jwtauth is the JWT filter: it verifies a JSON Web Token (HS256,
// RS256 or ES256) with keys from a secret, a file or a JWKS URL, checks
// issuer, audience, expiry and not-before with a leeway, and copies claims
// to request headers. Client-supplied copies of those headers are always
// removed.
package jwtauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/filter/authn"
)

// Factory builds JWT filters. The shortcut is JWT=JWKS_URL.
var Factory = filter.Factory{
	Fields: []string{"jwks_url", "issuer", "audience", "algorithms", "secret", "secret_file", "key_file",
		"jwks_refresh", "jwks_timeout", "leeway", "require_exp", "header", "scheme", "cookie", "claim_headers", "allow", "oidc_discovery"},
	New: newFilter,
}

// discoverJWKS stands for a jwks_url that OIDC discovery finds.
const discoverJWKS = "\x00discover"

var supported = []string{"HS256", "RS256", "ES256"}

func newFilter(a args.Args, env *filter.Env) (filter.Filter, error) {
	f := &Filter{}
	var err error
	get := func(name string) string {
		v, e := a.String(name, "")
		err = errors.Join(err, e)
		return v
	}
	secret, secretFile, keyFile, jwksURL := get("secret"), get("secret_file"), get("key_file"), get("jwks_url")
	f.issuer = get("issuer")
	if err != nil {
		return nil, err
	}
	discover, err := a.Bool("oidc_discovery", false)
	if err != nil {
		return nil, err
	}
	if discover && jwksURL == "" {
		if f.issuer == "" {
			return nil, errors.New("oidc_discovery needs issuer")
		}
		jwksURL = discoverJWKS // the issuer's discovery document names it
	}
	sources := 0
	for _, s := range []string{secret, secretFile, keyFile, jwksURL} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, errors.New("give exactly one of secret, secret_file, key_file or jwks_url")
	}
	algs := a.Strings("algorithms")
	for _, alg := range algs {
		if !slices.Contains(supported, alg) {
			return nil, fmt.Errorf("algorithms: %q is not one of %v", alg, supported)
		}
	}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("filter", "JWT", "route", env.RouteID)
	switch {
	case secret != "" || secretFile != "":
		if secretFile != "" {
			b, err := os.ReadFile(secretFile)
			if err != nil {
				return nil, fmt.Errorf("secret_file: %w", err)
			}
			secret = string(trimNewline(b))
		}
		if len(secret) < 32 {
			return nil, errors.New("secret: at least 32 bytes are required for HS256")
		}
		ks := &keySet{}
		ks.add("", []byte(secret))
		f.static = ks
		if algs == nil {
			algs = []string{"HS256"}
		}
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		if f.static, err = parseKeys(b); err != nil {
			return nil, fmt.Errorf("key_file %s: %w", keyFile, err)
		}
	default:
		var discoverFrom string
		if jwksURL == discoverJWKS {
			jwksURL, discoverFrom = "", f.issuer
			if u, err := url.Parse(f.issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("issuer: %q is not an http(s) URL, which oidc_discovery needs", f.issuer)
			}
		} else if u, err := url.Parse(jwksURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("jwks_url: %q is not an http(s) URL", jwksURL)
		}
		r := &remote{url: jwksURL, issuer: discoverFrom, log: log, minInterval: 5 * time.Second,
			client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 1, IdleConnTimeout: 30 * time.Second}}}
		if r.refresh, err = a.Duration("jwks_refresh", 5*time.Minute); err != nil {
			return nil, err
		}
		if r.timeout, err = a.Duration("jwks_timeout", 2*time.Second); err != nil {
			return nil, err
		}
		if r.refresh <= 0 || r.timeout <= 0 {
			return nil, errors.New("jwks_refresh and jwks_timeout must be greater than 0")
		}
		r.minInterval = min(r.minInterval, r.refresh)
		f.remote = r
	}
	if algs == nil {
		algs = []string{"RS256", "ES256"}
	}
	leeway, err := a.Duration("leeway", 30*time.Second)
	if err != nil {
		return nil, err
	}
	requireExp, err := a.Bool("require_exp", true)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(leeway)}
	if requireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if f.issuer != "" {
		opts = append(opts, jwt.WithIssuer(f.issuer))
	}
	if aud := a.Strings("audience"); len(aud) > 0 {
		opts = append(opts, jwt.WithAudience(aud...)) // any one of them
	}
	f.parser = jwt.NewParser(opts...)
	if f.src, err = authn.SourceArgs(a); err != nil {
		return nil, err
	}
	mappings := a.Strings("claim_headers")
	if mappings == nil {
		mappings = []string{"sub:X-User-Id"}
	}
	if f.claims, err = authn.ParseMappings(mappings); err != nil {
		return nil, err
	}
	if f.allow, err = authn.NewAllowList(a.Strings("allow")); err != nil {
		return nil, err
	}
	f.strip = authn.Headers(f.claims)
	return f, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Filter is a JWT filter.
type Filter struct {
	src    authn.Source
	allow  authn.AllowList
	claims []authn.Mapping
	strip  []string
	parser *jwt.Parser
	issuer string
	static *keySet // secret or key_file
	remote *remote // jwks_url
}

var errUnknownKid = errors.New("token signed with an unknown key")

// RoundTrip implements filter.Filter.
func (f *Filter) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	authn.Strip(r.Header, f.strip)
	if f.allow.Match(r.URL.Path) {
		return next.RoundTrip(r)
	}
	raw := f.src.Token(r)
	if raw == "" {
		return nil, authn.Unauthorized(authn.ReasonMissing, errors.New("no token"))
	}
	ks := f.static
	if ks == nil {
		var err error
		if ks, err = f.remote.get(r.Context()); err != nil {
			if r.Context().Err() != nil {
				return nil, &exchange.Error{Status: 499, Reason: exchange.ClientCanceled, Err: err}
			}
			return nil, &exchange.Error{Status: http.StatusServiceUnavailable, Reason: authn.ReasonUnavailable, Err: errors.Join(errUnavailable, err)}
		}
	}
	claims := jwt.MapClaims{}
	_, err := f.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid != "" {
			if k, ok := ks.byKid[kid]; ok {
				return k, nil
			}
			if f.remote != nil {
				f.remote.unknownKid()
			}
			return nil, errUnknownKid
		}
		vs := jwt.VerificationKeySet{}
		for _, k := range ks.all {
			vs.Keys = append(vs.Keys, k)
		}
		return vs, nil
	})
	if err != nil {
		return nil, authn.Unauthorized(authn.ReasonInvalid, err)
	}
	for _, m := range f.claims {
		if v, ok := authn.Value(claims[m.Claim]); ok {
			r.Header[m.Header] = []string{v}
		}
	}
	return next.RoundTrip(r)
}
