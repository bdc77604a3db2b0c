package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The admin port's protection from web pages and other strangers.
//
// A page an operator opens can send a POST to 127.0.0.1:9901 (a CORS simple
// request needs no preflight), and a page whose name it re-binds to
// 127.0.0.1 (DNS rebinding) can read the answers of GETs as its own origin.
// So every admin request except the health checks must
//   - when a token is set, carry it as "Authorization: Bearer TOKEN" (a page
//     does not know it, so then any Host will do: a scraper may use a DNS name);
//   - without a token, name the admin port by an IP address, localhost, or a
//     name listed in AllowedHosts: a re-bound page's requests carry the
//     page's own name in Host;
//   - not come from another origin when it changes state (net/http's
//     CrossOriginProtection: Sec-Fetch-Site, else Origin against Host).
//
// The guard wraps the whole mux, so an endpoint added later is protected
// unless open says otherwise.

// open reports whether r may be served to anyone: the health checks (probes
// send a pod's address or name), and the dashboard's page and files, which
// hold no data (the page asks for the token and sends it with its requests
// for /dashboard.json).
func open(r *http.Request) bool {
	switch {
	case r.URL.Path == "/healthz/live" || r.URL.Path == "/healthz/ready":
		return true
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return false
	}
	return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/")
}

// guard wraps next with the checks above.
func (a *Admin) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	var tokenSum [sha256.Size]byte
	if a.Token != "" {
		tokenSum = sha256.Sum256([]byte(a.Token))
	}
	checked := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open(r) {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case a.Token != "" && !bearer(r, tokenSum):
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice admin"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		case a.Token == "" && !a.allowedHost(r.Host):
			http.Error(w, "403 Forbidden: the admin port is not known by the name "+r.Host, http.StatusForbidden)
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// allowedHost: host (a Host header) is an IP address, localhost, or one of
// AllowedHosts, with any port.
func (a *Admin) allowedHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	for _, h := range a.AllowedHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// bearer reports whether r carries the token whose SHA-256 is sum, compared
// in constant time.
func bearer(r *http.Request, sum [sha256.Size]byte) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], sum[:]) == 1
}
