package proxy

import (
	"errors"
	"net/http"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// Request validation, on the way in and on the way out.
//
// net/http validates an HTTP/1.1 request line and Host, but the HTTP/2
// server takes :method, :path and :authority as they come, and the pool
// writes outbound requests with (*http.Request).Write, which checks none of
// them: a :method of "GET /evil HTTP/1.1" or a query holding a space would
// become a second request line upstream. So the proxy checks what it
// received (checkInbound, before any header is derived from it) and what it
// sends (checkOutbound, at the end of every chain, after the filters), the
// same way for every pair of client and upstream protocols.

// checkInbound refuses a request whose method, query or authority could
// not stand in an HTTP/1.1 request line or Host header.
func checkInbound(r *http.Request) error {
	if err := checkTarget(r.Method, r.URL.RawQuery); err != nil {
		return badRequest(err)
	}
	if !validAuthority(r.Host) {
		return badRequest(errors.New("invalid authority"))
	}
	return nil
}

// checkOutbound refuses an outbound request, as the filters left it, that
// would be written as something else than one well-formed request.
func checkOutbound(r *http.Request) error {
	if err := checkTarget(r.Method, r.URL.RawQuery); err != nil {
		return badRequest(err)
	}
	if hasSpaceOrCTL(r.URL.Opaque) || hasSpaceOrCTL(r.URL.RawPath) {
		return badRequest(errors.New("invalid request target"))
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !validAuthority(host) {
		return badRequest(errors.New("invalid upstream host"))
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return badRequest(errors.New("invalid header name"))
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return badRequest(errors.New("invalid value of header " + k))
			}
		}
	}
	return nil
}

func checkTarget(method, rawQuery string) error {
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token, like a field name
		return errors.New("invalid method")
	}
	if hasSpaceOrCTL(rawQuery) {
		return errors.New("invalid query")
	}
	return nil
}

// validAuthority: host[:port] as net/http accepts it in an HTTP/1.1 Host
// header; empty is allowed (the upstream's address is used).
func validAuthority(h string) bool {
	return httpguts.ValidHostHeader(h)
}

// hasSpaceOrCTL reports a byte that ends or corrupts a request target.
func hasSpaceOrCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

func badRequest(err error) *exchange.Error {
	return &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.BadRequest, Err: err}
}
