package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

const secret = "0123456789abcdef0123456789abcdef-test-secret"

var (
	rsaKey, _   = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _    = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey2, _   = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
)

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(edit func(c jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iss": "https://issuer.test", "aud": "api", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "roles": []string{"admin", "dev"}}
	if edit != nil {
		edit(c)
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	b, _ := k.Bytes() // uncompressed point 04||X||Y
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64(b[1:33]), "y": b64(b[33:])}
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

// jwksServer serves a JWKS that the test can replace, on loopback.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []map[string]string
	hits int
	down bool
}

func newJWKS(t *testing.T, keys ...map[string]string) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits++
		if s.down {
			time.Sleep(300 * time.Millisecond)
			http.Error(w, "down", 503)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]string) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func writePEM(t *testing.T, k any) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	return p
}

func call(t *testing.T, g *gateway.Gateway, path, token string, extra map[string]string) (int, gatewaytest.Seen) {
	t.Helper()
	req, _ := http.NewRequest("GET", gatewaytest.URL(g, path), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, body := gatewaytest.Do(t, gatewaytest.Client(t), req)
	if resp.StatusCode != 200 {
		return resp.StatusCode, gatewaytest.Seen{}
	}
	return 200, gatewaytest.DecodeSeen(t, body)
}

func TestJWT(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	jwks := newJWKS(t, ecJWK("ec1", &ecKey.PublicKey))
	pemFile := writePEM(t, &rsaKey.PublicKey)
	g := gatewaytest.Start(t, fmt.Sprintf(`
		routes:
		  - id: hs
		    uri: http://%[1]s
		    predicates: [Path=/hs/**]
		    filters:
		      - name: JWT
		        args: {secret: %[2]s, issuer: "https://issuer.test", audience: [api, other], leeway: 30s,
		               claim_headers: ["sub:X-User-Id", "roles:X-Roles"], allow: [/hs/public/**]}
		  - id: rs
		    uri: http://%[1]s
		    predicates: [Path=/rs/**]
		    filters: [{name: JWT, args: {key_file: %[3]s}}]
		  - id: es
		    uri: http://%[1]s
		    predicates: [Path=/es/**]
		    filters: ["JWT=%[4]s"]
		`, be.Addr(), secret, pemFile, jwks.URL))
	hs := jwt.SigningMethodHS256
	tests := []struct {
		desc   string
		path   string
		token  string
		extra  map[string]string
		status int
		seen   map[string]string // headers the backend must see; "" = absent
	}{
		{desc: "HS256 valid, claims mapped", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(nil)), status: 200,
			seen: map[string]string{"X-User-Id": "alice", "X-Roles": "admin,dev"}},
		{desc: "HS256 spoofed claim headers replaced", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(nil)),
			extra: map[string]string{"X-User-Id": "mallory", "X-Roles": "root"}, status: 200,
			seen: map[string]string{"X-User-Id": "alice", "X-Roles": "admin,dev"}},
		{desc: "HS256 claim absent: spoofed copy removed", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { delete(c, "roles") })),
			extra: map[string]string{"X-Roles": "root"}, status: 200, seen: map[string]string{"X-User-Id": "alice", "X-Roles": ""}},
		{desc: "allow-listed path, spoofed copies stripped", path: "/hs/public/x", extra: map[string]string{"X-User-Id": "mallory"}, status: 200,
			seen: map[string]string{"X-User-Id": ""}},
		{desc: "no token", path: "/hs/x", status: 401},
		{desc: "wrong secret", path: "/hs/x", token: sign(t, hs, []byte(secret+"x"), "", claims(nil)), status: 401},
		{desc: "expired", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), status: 401},
		{desc: "expired within leeway", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })), status: 200},
		{desc: "not yet valid", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })), status: 401},
		{desc: "nbf within leeway", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Second).Unix() })), status: 200},
		{desc: "no exp", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { delete(c, "exp") })), status: 401},
		{desc: "wrong issuer", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), status: 401},
		{desc: "wrong audience", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["aud"] = "billing" })), status: 401},
		{desc: "second accepted audience", path: "/hs/x", token: sign(t, hs, []byte(secret), "", claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", "other"} })), status: 200},
		{desc: "alg none", path: "/hs/x", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil)), status: 401},
		{desc: "RS256 valid (PEM key file)", path: "/rs/x", token: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims(nil)), status: 200,
			seen: map[string]string{"X-User-Id": "alice"}},
		{desc: "RS256 other key", path: "/rs/x", token: sign(t, jwt.SigningMethodRS256, otherRSA, "", claims(nil)), status: 401},
		{desc: "alg confusion: HS256 keyed with the RSA public key", path: "/rs/x",
			token: sign(t, hs, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))}), "", claims(nil)), status: 401},
		{desc: "HS256 on an RS route", path: "/rs/x", token: sign(t, hs, []byte(secret), "", claims(nil)), status: 401},
		{desc: "ES256 valid (JWKS URL)", path: "/es/x", token: sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil)), status: 200,
			seen: map[string]string{"X-User-Id": "alice"}},
		{desc: "ES256 unknown kid", path: "/es/x", token: sign(t, jwt.SigningMethodES256, ecKey2, "ec9", claims(nil)), status: 401},
		{desc: "ES256 right kid, wrong key", path: "/es/x", token: sign(t, jwt.SigningMethodES256, ecKey2, "ec1", claims(nil)), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, seen := call(t, g, tc.path, tc.token, tc.extra)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			for h, want := range tc.seen {
				got := seen.Header[h]
				if want == "" && got != nil || want != "" && (len(got) != 1 || got[0] != want) {
					t.Errorf("backend saw %s: %q, want %q", h, got, want)
				}
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestJWTKeyRotation: the JWKS publishes a new key and drops the old one; the
// filter picks it up in the background.
func TestJWTKeyRotation(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	jwks := newJWKS(t, rsaJWK("r1", &rsaKey.PublicKey))
	g := gatewaytest.Start(t, fmt.Sprintf(`
		routes:
		  - id: r
		    uri: http://%s
		    filters: [{name: JWT, args: {jwks_url: "%s", jwks_refresh: 200ms}}]
		`, be.Addr(), jwks.URL))
	old := sign(t, jwt.SigningMethodRS256, rsaKey, "r1", claims(nil))
	next := sign(t, jwt.SigningMethodES256, ecKey2, "e2", claims(nil))
	if st, _ := call(t, g, "/x", old, nil); st != 200 {
		t.Fatalf("old key before rotation: %d", st)
	}
	if st, _ := call(t, g, "/x", next, nil); st != 401 {
		t.Fatalf("new key before rotation: %d, want 401", st)
	}
	jwks.set(ecJWK("e2", &ecKey2.PublicKey))
	if !gatewaytest.Eventually(5*time.Second, func() bool { st, _ := call(t, g, "/x", next, nil); return st == 200 }) {
		t.Fatal("new key never accepted after rotation")
	}
	if st, _ := call(t, g, "/x", old, nil); st != 401 {
		t.Errorf("old key after rotation: %d, want 401", st)
	}
	jwks.mu.Lock()
	hits := jwks.hits
	jwks.mu.Unlock()
	if hits > 40 {
		t.Errorf("JWKS fetched %d times: refreshes are not bounded", hits)
	}
}

func TestJWTJWKSDown(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	jwks := newJWKS(t)
	jwks.down = true
	g := gatewaytest.Start(t, fmt.Sprintf(`
		routes:
		  - id: r
		    uri: http://%s
		    filters: [{name: JWT, args: {jwks_url: "%s", jwks_timeout: 100ms}}]
		`, be.Addr(), jwks.URL))
	tok := sign(t, jwt.SigningMethodES256, ecKey, "ec1", claims(nil))
	for i := range 3 {
		start := time.Now()
		st, _ := call(t, g, "/x", tok, nil)
		if st != 503 {
			t.Fatalf("request %d: status %d, want 503", i, st)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("request %d took %s with the JWKS down (timeout 100ms)", i, d)
		}
	}
	jwks.mu.Lock()
	jwks.down = false
	jwks.keys = []map[string]string{ecJWK("ec1", &ecKey.PublicKey)}
	jwks.mu.Unlock()
	if !gatewaytest.Eventually(3*time.Second, func() bool { st, _ := call(t, g, "/x", tok, nil); return st == 200 }) {
		t.Fatal("did not recover when the JWKS came back")
	}
}

func TestJWTConfigErrors(t *testing.T) {
	tests := []struct {
		desc string
		args string
		want string
	}{
		{desc: "no key", args: "{issuer: x}", want: "exactly one of"},
		{desc: "two keys", args: "{secret: " + secret + ", jwks_url: 'http://127.0.0.1:1/jwks'}", want: "exactly one of"},
		{desc: "short secret", args: "{secret: short}", want: "at least 32 bytes"},
		{desc: "bad algorithm", args: "{secret: " + secret + ", algorithms: [HS512]}", want: "not one of"},
		{desc: "missing key file", args: "{key_file: /nonexistent.pem}", want: "key_file"},
		{desc: "bad url", args: "{jwks_url: 'ftp://x/keys'}", want: "not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := gatewaytest.TryStart("routes: [{id: a, uri: 'http://127.0.0.1:1', filters: [{name: JWT, args: " + tc.args + "}]}]")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestJWTOIDCDiscovery: with oidc_discovery, the JWKS is the one named by
// the issuer's discovery document (Spring's issuer-uri), fetched on demand
// from a real loopback server; a document naming another issuer is refused.
func TestJWTOIDCDiscovery(t *testing.T) {
	be := gatewaytest.NewEcho(t, "be")
	jwks := newJWKS(t, rsaJWK("r1", &rsaKey.PublicKey))
	var issuer string
	claimed := func() string { return issuer }
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/realms/shop/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": claimed(), "jwks_uri": jwks.URL + "/certs",
			"authorization_endpoint": issuer + "/auth", "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(idp.Close)
	issuer = idp.URL + "/realms/shop"
	g := gatewaytest.Start(t, fmt.Sprintf(`
		routes:
		  - id: r
		    uri: http://%s
		    filters: [{name: JWT, args: {issuer: "%s", oidc_discovery: true}}]
		`, be.Addr(), issuer))
	tok := sign(t, jwt.SigningMethodRS256, rsaKey, "r1", claims(func(c jwt.MapClaims) { c["iss"] = issuer }))
	if st, _ := call(t, g, "/x", tok, nil); st != 200 {
		t.Fatalf("token of the discovered issuer: %d, want 200", st)
	}
	wrong := sign(t, jwt.SigningMethodRS256, rsaKey, "r1", claims(nil))
	if st, _ := call(t, g, "/x", wrong, nil); st != 401 {
		t.Fatalf("token of another issuer: %d, want 401", st)
	}

	g2 := gatewaytest.Start(t, fmt.Sprintf(`
		routes:
		  - id: r
		    uri: http://%s
		    filters: [{name: JWT, args: {issuer: "%s/", oidc_discovery: true}}]
		`, be.Addr(), issuer))
	if st, _ := call(t, g2, "/x", tok, nil); st == 200 {
		t.Fatal("accepted although the discovery document names another issuer")
	}
}
