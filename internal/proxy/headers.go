package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/http/httpguts"
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
			for _, f := range strings.Split(v, ",") {
				if f = textproto(f); f != "" {
					delete(h, f)
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

func textproto(f string) string {
	f = strings.TrimSpace(f)
	if f == "" {
		return ""
	}
	return http.CanonicalHeaderKey(f)
}

// forwarded sets X-Forwarded-For/-Proto/-Host/-Port and Forwarded on an
// outbound request. A client's own values are kept (and extended) only when
// its peer address is a trusted proxy; otherwise they are replaced, so a
// client cannot forge its address. It returns the client address: the peer,
// or, behind trusted proxies, the first untrusted address from the right of
// X-Forwarded-For.
func forwarded(h http.Header, r *http.Request, peer netip.Addr, trusted bool, trustedNets []netip.Prefix) netip.Addr {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	port := ""
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			port = itoa(int(ap.Port()))
		}
	}
	ip := peer.Unmap().String()
	client := peer
	if trusted {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			client = clientFrom(prior, peer, trustedNets)
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
		setIfAbsent(h, "X-Forwarded-Proto", proto)
		setIfAbsent(h, "X-Forwarded-Host", r.Host)
		if port != "" {
			setIfAbsent(h, "X-Forwarded-Port", port)
		}
	} else {
		h["X-Forwarded-For"] = []string{ip}
		h["X-Forwarded-Proto"] = []string{proto}
		h["X-Forwarded-Host"] = []string{r.Host}
		if port != "" {
			h["X-Forwarded-Port"] = []string{port}
		} else {
			delete(h, "X-Forwarded-Port")
		}
	}
	elem := "for=" + forNode(peer) + ";host=" + quote(r.Host) + ";proto=" + proto
	if prior := h["Forwarded"]; trusted && len(prior) > 0 {
		h["Forwarded"] = []string{strings.Join(prior, ", ") + ", " + elem}
	} else {
		h["Forwarded"] = []string{elem}
	}
	return client
}

func setIfAbsent(h http.Header, k, v string) {
	if len(h[k]) == 0 {
		h[k] = []string{v}
	}
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

// forNode formats an address for Forwarded (RFC 7239 §6): IPv6 quoted in brackets.
func forNode(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		return `"[` + a.String() + `]"`
	}
	return a.String()
}

func quote(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
		}
	}
	return s
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
