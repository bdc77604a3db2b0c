package builtin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/filter"
)

// answer is an empty response of the gateway's own to r.
func answer(r *http.Request, status int) *http.Response {
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r,
	}
}

// statusNames maps Spring's HttpStatus names (NOT_FOUND, I_AM_A_TEAPOT) to codes.
var statusNames = func() map[string]int {
	m := map[string]int{
		"I_AM_A_TEAPOT": 418, "PAYLOAD_TOO_LARGE": 413, "URI_TOO_LONG": 414,
		"REQUESTED_RANGE_NOT_SATISFIABLE": 416, "MOVED_TEMPORARILY": 302,
		"REQUEST_ENTITY_TOO_LARGE": 413, "REQUEST_URI_TOO_LONG": 414,
	}
	for c := 100; c < 600; c++ {
		if t := http.StatusText(c); t != "" {
			n := strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(strings.ToUpper(t))
			if _, ok := m[n]; !ok {
				m[n] = c
			}
		}
	}
	return m
}()

// parseStatus reads a status as a number ("401") or a Spring HttpStatus name ("UNAUTHORIZED").
func parseStatus(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 100 || n > 599 {
			return 0, fmt.Errorf("%d is not an HTTP status (100-599)", n)
		}
		return n, nil
	}
	if n, ok := statusNames[strings.ToUpper(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("%q is not an HTTP status code or name (like 401 or UNAUTHORIZED)", s)
}

// SetStatus=401 sets the response status; originalStatusHeaderName, when
// given, names a response header that carries the backend's status.
var setStatus = filter.Factory{Fields: []string{"status", "originalStatusHeaderName"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	s, err := a.Required("status")
	if err != nil {
		return nil, err
	}
	code, err := parseStatus(s)
	if err != nil {
		return nil, fmt.Errorf("status: %v", err)
	}
	orig, err := a.String("originalStatusHeaderName", "")
	if err != nil {
		return nil, err
	}
	return filter.Response(func(resp *http.Response) {
		if orig != "" {
			resp.Header.Set(orig, strconv.Itoa(resp.StatusCode))
		}
		resp.StatusCode = code
		resp.Status = strconv.Itoa(code) + " " + http.StatusText(code)
	}), nil
}}

// RedirectTo=302,https://acme.org answers with a redirect; with
// includeRequestParams the request's query is added to the URL's.
var redirectTo = filter.Factory{Fields: []string{"status", "url", "includeRequestParams"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	s, err := a.Required("status")
	if err != nil {
		return nil, err
	}
	code, err := parseStatus(s)
	if err != nil {
		return nil, fmt.Errorf("status: %v", err)
	}
	if code < 300 || code > 399 {
		return nil, fmt.Errorf("status: must be a 3xx redirection, got %d", code)
	}
	raw, err := a.Required("url")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %v", err)
	}
	include, err := a.Bool("includeRequestParams", false)
	if err != nil {
		return nil, err
	}
	return filter.Func(func(r *http.Request, _ http.RoundTripper) (*http.Response, error) {
		loc := raw
		if include && r.URL.RawQuery != "" {
			v := *u
			if v.RawQuery != "" {
				v.RawQuery += "&" + r.URL.RawQuery
			} else {
				v.RawQuery = r.URL.RawQuery
			}
			loc = v.String()
		}
		resp := answer(r, code)
		resp.Header.Set("Location", loc)
		return resp, nil
	}), nil
}}
