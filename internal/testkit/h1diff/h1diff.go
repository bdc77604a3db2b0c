// Package h1diff compares how two HTTP/1.1 request parsers read the same
// bytes: github.com/valyala/fasthttp's (the engine issue 16 moves HTTP/1.1
// to) and net/http's (the reference Sluice runs on today, whose refusals
// the hardening work relies on). A request the two read differently is a
// request smuggling candidate: whatever sits before or behind Sluice may
// read it as one of them. The engine must refuse every such request.
//
// Compare is the whole API. What counts as "the same" is defined on View.
package h1diff

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// MaxBody bounds the body either parser reads; a longer one is refused by
// both (fasthttp with ErrBodyTooLarge, net/http's side here).
const MaxBody = 64 << 10

// A Class names what two parsers disagree about. The names are stable: they
// prefix the seed corpus files and head the write-ups in docs/engine.md.
type Class string

const (
	Accept  Class = "accept"  // one parser refuses the request, the other accepts it
	Method  Class = "method"  // request method
	Version Class = "version" // HTTP/1.0 against HTTP/1.1
	Target  Class = "target"  // request-target as sent, or the host it names
	Framing Class = "framing" // Content-Length against chunked, the length, or where the request ends
	Body    Class = "body"    // the body bytes
	Header  Class = "header"  // header (and trailer) fields
	Close   Class = "close"   // whether the connection ends after this request
	Cookie  Class = "cookie"  // the cookies, as name=value pairs
)

// A Diff is one disagreement: its class and both parsers' views of the field.
type Diff struct {
	Class    Class
	NetHTTP  string
	FastHTTP string
}

func (d *Diff) String() string {
	return fmt.Sprintf("%s: net/http %s, fasthttp %s", d.Class, d.NetHTTP, d.FastHTTP)
}

// Compare parses raw, one request possibly followed by others, with both
// parsers and returns the first disagreement in the order of the classes
// above, or nil when they agree (both refusing is agreeing).
func Compare(raw []byte) *Diff {
	return compareViews(ParseNetHTTP(raw), ParseFastHTTP(raw))
}

func compareViews(n, f View) *Diff {
	if (n.Err == nil) != (f.Err == nil) {
		return &Diff{Accept, verdict(n.Err), verdict(f.Err)}
	}
	if n.Err != nil {
		return nil
	}
	for _, c := range []struct {
		class Class
		n, f  string
	}{
		{Method, n.Method, f.Method},
		{Version, n.Version, f.Version},
		{Target, n.Target + " host " + n.Host, f.Target + " host " + f.Host},
		{Framing, n.framing(), f.framing()},
		{Body, fmt.Sprintf("%q", n.Body), fmt.Sprintf("%q", f.Body)},
		{Header, fmt.Sprintf("%q", n.Header), fmt.Sprintf("%q", f.Header)},
		{Close, fmt.Sprint(n.Close), fmt.Sprint(f.Close)},
		{Cookie, fmt.Sprintf("%q", n.Cookies), fmt.Sprintf("%q", f.Cookies)},
	} {
		if c.n != c.f {
			return &Diff{c.class, c.n, c.f}
		}
	}
	return nil
}

func verdict(err error) string {
	if err == nil {
		return "accepts"
	}
	return "refuses (" + err.Error() + ")"
}

// A View is what one parser made of the first request in the input, in a
// form where equal means "the same request":
//   - Method and Target are the bytes of the request line, as each parser
//     keeps them; Version is "HTTP/1.0" or "HTTP/1.1".
//   - Host is the authority the request is for: the absolute-form target's
//     if it has one, else the Host header's; in lower case (fasthttp lowers
//     it, and host names are case-insensitive).
//   - Chunked and Length are the body framing (Length is the declared
//     Content-Length; 0 when there is none; -1 when chunked); Consumed is
//     where the request ends in the input, and so where the next one starts.
//   - Body is the decoded body.
//   - Close says whether the connection ends after this request
//     (Connection: close, or HTTP/1.0 without keep-alive).
//   - Header holds every header and trailer field but Host, Content-Length
//     and Transfer-Encoding (compared above), Connection (fasthttp keeps
//     only whether it says close: Close), Trailer (net/http drops the
//     declaration; the trailer fields are compared) and Cookie (fasthttp
//     re-encodes cookies: Cookies), as "name: value" with the name in lower
//     case and the value as the parser stores it (both trim optional
//     whitespace), sorted by name, fields of one name in received order.
//   - Cookies are the request's cookies as each parser splits the Cookie
//     fields into name=value pairs (net/http's Request.Cookies, fasthttp's
//     RequestHeader.Cookies), in order: what a cookie predicate sees.
type View struct {
	Err                     error // the request is refused
	Method, Version, Target string
	Host                    string
	Chunked                 bool
	Length                  int64
	Consumed                int
	Body                    []byte
	Header                  []string
	Close                   bool
	Cookies                 []string
}

// asciiLower lowers A-Z only: strings.ToLower would turn invalid UTF-8
// into U+FFFD, which fasthttp's lowering does not.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (v *View) framing() string {
	kind := "length " + fmt.Sprint(v.Length)
	if v.Chunked {
		kind = "chunked"
	}
	return fmt.Sprintf("%s, request ends at byte %d", kind, v.Consumed)
}

// skipped fields are compared elsewhere, or not at all (Cookie).
var skipped = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true, "trailer": true, "cookie": true,
	"connection": true}

func (v *View) add(name, value string) {
	if name = strings.ToLower(name); !skipped[name] {
		v.Header = append(v.Header, name+": "+value)
	}
}

// sortHeader sorts by name only, keeping the received order within a name.
func (v *View) sortHeader() {
	slices.SortStableFunc(v.Header, func(a, b string) int {
		an, _, _ := strings.Cut(a, ":")
		bn, _, _ := strings.Cut(b, ":")
		return strings.Compare(an, bn)
	})
}

// ParseNetHTTP reads the first request of raw as net/http's server does:
// http.ReadRequest, then the checks its conn.readRequest adds (protocol
// version, Host present and valid, header names and values valid), then the
// whole body.
func ParseNetHTTP(raw []byte) View {
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	req, err := http.ReadRequest(br)
	if err != nil {
		return View{Err: err}
	}
	if err := serverChecks(req, fields(raw)["Host"]); err != nil {
		return View{Err: err}
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	if err == nil && len(body) > MaxBody {
		err = fmt.Errorf("body longer than %d bytes", MaxBody)
	}
	if err != nil {
		return View{Err: err}
	}
	v := View{Method: req.Method, Version: req.Proto, Target: req.RequestURI, Host: asciiLower(req.Host),
		Chunked: slices.Equal(req.TransferEncoding, []string{"chunked"}), Length: req.ContentLength,
		Consumed: len(raw) - br.Buffered() - r.Len(), Body: body, Close: req.Close}
	for _, h := range []http.Header{req.Header, req.Trailer} {
		for name, values := range h {
			for _, value := range values {
				v.add(name, value)
			}
		}
	}
	for _, c := range req.Cookies() {
		v.Cookies = append(v.Cookies, c.Name+"="+c.Value)
	}
	v.sortHeader()
	return v
}

// fields returns the header fields of raw as net/http's parser reads them
// (textproto, which http.ReadRequest uses) before ReadRequest drops Host,
// and before Content-Length and Transfer-Encoding are interpreted; nil if
// it cannot read them.
func fields(raw []byte) textproto.MIMEHeader {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	if _, err := tp.ReadLine(); err != nil {
		return nil
	}
	h, _ := tp.ReadMIMEHeader()
	return h
}

// serverChecks are net/http's conn.readRequest's checks of a parsed request;
// hosts are its Host fields.
func serverChecks(req *http.Request, hosts []string) error {
	if req.ProtoMajor != 1 {
		return fmt.Errorf("unsupported protocol version %s", req.Proto)
	}
	haveHost := hosts != nil
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "CONNECT" {
		return fmt.Errorf("missing required Host header")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return fmt.Errorf("malformed Host header")
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid header value %q", v)
			}
		}
	}
	return nil
}

// ParseFastHTTP reads the first request of raw as fasthttp's server does with
// the settings the engine will use (header names normalised, multipart
// bodies not pre-parsed): RequestHeader.Read, the URI parse the server does
// before the handler, then the whole body (after the 100 Continue the
// server would send, if the request expects one).
func ParseFastHTTP(raw []byte) View {
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	var req fasthttp.Request
	if err := req.Header.Read(br); err != nil {
		return View{Err: err}
	}
	if err := req.URI().Parse(req.Header.Host(), req.Header.RequestURI()); err != nil {
		return View{Err: fmt.Errorf("request URI: %w", err)}
	}
	length := int64(req.Header.ContentLength()) // reading a chunked body sets it to the body's
	if err := req.ContinueReadBody(br, MaxBody, false); err != nil {
		return View{Err: err}
	}
	v := View{Method: string(req.Header.Method()), Version: string(req.Header.Protocol()),
		Target: string(req.Header.RequestURI()), Host: string(req.Host()),
		Length: length, Consumed: len(raw) - br.Buffered() - r.Len(),
		Body: bytes.Clone(req.Body()), Close: req.Header.ConnectionClose()}
	switch v.Length {
	case -1:
		v.Chunked = true
	case -2: // no body (GET, HEAD) is no length
		v.Length = 0
	}
	for name, value := range req.Header.All() {
		v.add(string(name), string(value))
	}
	seen := map[string]bool{}
	for _, name := range req.Header.PeekTrailerKeys() {
		if k := string(name); !seen[k] {
			seen[k] = true
			for _, value := range req.Header.PeekAllTrailer(k) {
				v.add(k, string(value))
			}
		}
	}
	for name, value := range req.Header.Cookies() {
		v.Cookies = append(v.Cookies, string(name)+"="+string(value))
	}
	v.sortHeader()
	return v
}
