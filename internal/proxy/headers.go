package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// hopHeaders are meaningful only for a single connection (RFC 9110 §7.6.1)
// and are never forwarded.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop deletes hop-by-hop headers, including those the Connection
// header names. It reports the Upgrade protocol when the request asks to
// switch protocols, which is then kept.
func removeHopByHop(h http.Header) (upgrade string) {
	// Read before Connection's list is applied: a conforming client sends
	// "Te: trailers" together with "Connection: Te".
	te := httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	if c := h["Connection"]; len(c) > 0 {
		if httpguts.HeaderValuesContainsToken(c, "Upgrade") {
			upgrade = h.Get("Upgrade")
		}
		for _, v := range c {
			for v != "" {
				var f string
				f, v, _ = strings.Cut(v, ",")
				// Hop-by-hop headers are deleted below anyway; skipping them
				// here spares canonicalizing "keep-alive" on every response.
				if f = strings.TrimSpace(f); f != "" && !isHopHeader(f) {
					delete(h, http.CanonicalHeaderKey(f))
				}
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
	if te {
		// gRPC needs to know the client accepts trailers.
		h["Te"] = []string{"trailers"}
	}
	return upgrade
}

func isHopHeader(f string) bool {
	for _, k := range hopHeaders {
		if strings.EqualFold(f, k) {
			return true
		}
	}
	return false
}

// forwarded sets X-Forwarded-For/-Proto/-Host/-Port and Forwarded on an
// outbound request. A client's own values are kept (and extended) only when
// its peer address is a trusted proxy; otherwise they are replaced, so a
// client cannot forge its address. It returns the client address: the peer,
// or, behind trusted proxies, the first untrusted address from the right of
// X-Forwarded-For.
func forwarded(h http.Header, r *http.Request, ex *exchange.Exchange, peer netip.Addr, trusted bool, trustedNets []netip.Prefix) netip.Addr {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	port := localPort(r)
	ip := addrText(r.RemoteAddr, peer)
	client := peer
	set := func(k, v string) { h[k] = ex.Values(v) }
	if trusted {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			client = clientFrom(prior, peer, trustedNets)
			set("X-Forwarded-For", strings.Join(prior, ", ")+", "+ip)
		} else {
			set("X-Forwarded-For", ip)
		}
		if len(h["X-Forwarded-Proto"]) == 0 {
			set("X-Forwarded-Proto", proto)
		}
		if len(h["X-Forwarded-Host"]) == 0 {
			set("X-Forwarded-Host", r.Host)
		}
		if port != "" && len(h["X-Forwarded-Port"]) == 0 {
			set("X-Forwarded-Port", port)
		}
	} else {
		set("X-Forwarded-For", ip)
		set("X-Forwarded-Proto", proto)
		set("X-Forwarded-Host", r.Host)
		if port != "" {
			set("X-Forwarded-Port", port)
		} else {
			delete(h, "X-Forwarded-Port")
		}
	}
	node := ip
	if peer.Unmap().Is6() {
		node = `"[` + ip + `]"`
	}
	var elem string
	if host := r.Host; plainToken(host) {
		elem = "for=" + node + ";host=" + host + ";proto=" + proto
	} else {
		elem = "for=" + node + `;host="` + escapeQuoted(host) + `";proto=` + proto
	}
	if prior := h["Forwarded"]; trusted && len(prior) > 0 {
		set("Forwarded", strings.Join(prior, ", ")+", "+elem)
	} else {
		set("Forwarded", elem)
	}
	return client
}

// addrText is a's text: the host part of remoteAddr ("ip:port") when that is
// a's IPv4 address, as it usually is, sparing an allocation; a.Unmap's
// String otherwise.
func addrText(remoteAddr string, a netip.Addr) string {
	a = a.Unmap()
	if i := strings.LastIndexByte(remoteAddr, ':'); a.Is4() && i > 0 {
		if b, err := netip.ParseAddr(remoteAddr[:i]); err == nil && b == a {
			return remoteAddr[:i]
		}
	}
	return a.String()
}

// forwardedPrefix is the part of the path orig that was removed in front
// of now, as Spring Cloud Gateway's XForwardedHeadersFilter finds it
// (trailing slashes aside): /api/users/1 → /users/1 gives /api; no prefix
// when now is not the end of orig.
func forwardedPrefix(orig, now string) string {
	o, n := strings.TrimSuffix(orig, "/"), strings.TrimSuffix(now, "/")
	if !strings.HasSuffix(o, n) {
		return ""
	}
	return o[:len(o)-len(n)]
}

// localPort is the port the request arrived on, as a string.
func localPort(r *http.Request) string {
	switch la := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return portString(la.Port)
	case net.Addr:
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			return portString(int(ap.Port()))
		}
	}
	return ""
}

// lastPort caches the string of the last port seen: a gateway listens on
// one or two ports, so this saves an allocation per request.
var lastPort atomic.Pointer[portName]

type portName struct {
	n int
	s string
}

func portString(n int) string {
	if p := lastPort.Load(); p != nil && p.n == n {
		return p.s
	}
	p := &portName{n: n, s: itoa(n)}
	lastPort.Store(p)
	return p.s
}

// clientFrom walks X-Forwarded-For from the right, skipping trusted proxies.
func clientFrom(xff []string, peer netip.Addr, trusted []netip.Prefix) netip.Addr {
	all := strings.Join(xff, ",")
	for all != "" {
		i := strings.LastIndexByte(all, ',')
		part := strings.TrimSpace(all[i+1:])
		all = all[:max(i, 0)]
		a, err := netip.ParseAddr(part)
		if err != nil {
			return peer
		}
		if !contains(trusted, a) {
			return a
		}
		peer = a
		if i < 0 {
			break
		}
	}
	return peer
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// plainToken reports whether s can stand unquoted as a Forwarded value
// (RFC 7239 §4: a token; "host:port" and IPv6 literals must be quoted).
func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// escapeQuoted escapes s for a quoted-string.
func escapeQuoted(s string) string {
	if !strings.ContainsAny(s, `\"`) {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`)
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// stripUntrusted deletes keys (canonical header names) from h: headers
// that claim a client's address or the path a front proxy saw, forged when
// the peer is not a trusted proxy.
func stripUntrusted(h http.Header, keys []string) {
	for _, k := range keys {
		delete(h, k)
	}
}
