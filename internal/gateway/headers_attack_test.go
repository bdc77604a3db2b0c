package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// Control bytes that a path variable holds once percent-decoded (%01, %7f,
// a tab) never reach a header raw: the backend (a raw socket recording the
// bytes it receives) and the client see them percent-encoded.
func TestPathVariableControlBytesInHeaders(t *testing.T) {
	t.Parallel()
	wire := newWireRecorder(t)
	g := gatewaytest.Start(t, `
		routes:
		  - id: r
		    uri: http://`+wire.addr+`
		    predicates: ["Path=/seg/{seg}"]
		    filters: ["AddRequestHeader=X-Seg, <{seg}>", "AddRequestHeadersIfNotPresent=X-More:<{seg}>", "AddResponseHeader=X-Back, <{seg}>"]
		`)
	for _, tc := range []struct{ desc, seg, want string }{
		{desc: "SOH", seg: "a%01b", want: "<a%01b>"},
		{desc: "DEL", seg: "a%7fb", want: "<a%7Fb>"},
		{desc: "tab", seg: "a%09b", want: "<a%09b>"},
		{desc: "escape sequence", seg: "%1b%5b2J", want: "<%1B[2J>"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			resp, _ := gatewaytest.Raw(t, g.Addr(), "GET /seg/"+tc.seg+" HTTP/1.1\nHost: gw\n")
			got := wire.take()
			for _, h := range []string{"X-Seg: ", "X-More: "} {
				if !strings.Contains(got, h+tc.want+"\r\n") {
					t.Errorf("the backend did not receive %s%q:\n%q", h, tc.want, got)
				}
			}
			if v := resp.Header.Get("X-Back"); v != tc.want {
				t.Errorf("the client got X-Back %q, want %q", v, tc.want)
			}
		})
	}
}

// Headers that claim the client's address or the path a front proxy saw
// are removed when the peer is not a trusted proxy, and kept from one.
func TestUntrustedIdentityHeadersStripped(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	forged := "X-Real-IP: 10.0.0.1\nTrue-Client-IP: 10.0.0.1\nX-Client-IP: 10.0.0.1\nX-Forwarded-Prefix: /admin\n" +
		"X-Forwarded-Server: internal\nX-Original-URL: /admin\nX-Rewrite-URL: /admin\nX-Other: kept\n"
	names := []string{"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Original-Url", "X-Rewrite-Url"}

	untrusted := startOne(t, be.Addr(), "")
	_, body := gatewaytest.Raw(t, untrusted.Addr(), "GET /x HTTP/1.1\nHost: gw\n"+forged)
	seen := gatewaytest.DecodeSeen(t, body)
	for _, n := range names {
		if v, ok := seen.Header[n]; ok {
			t.Errorf("from an untrusted peer, the backend received %s: %q", n, v)
		}
	}
	if http.Header(seen.Header).Get("X-Other") != "kept" {
		t.Errorf("X-Other was removed")
	}

	trusted := startOne(t, be.Addr(), "", gatewaytest.WithServer("trusted_proxies: [127.0.0.1/32]"))
	_, body = gatewaytest.Raw(t, trusted.Addr(), "GET /x HTTP/1.1\nHost: gw\n"+forged)
	seen = gatewaytest.DecodeSeen(t, body)
	for _, n := range names {
		if _, ok := seen.Header[n]; !ok {
			t.Errorf("from a trusted proxy, %s was removed", n)
		}
	}
}
