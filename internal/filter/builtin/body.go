package builtin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// ResponseBodyTooLarge is the reason of a 502 when a filter that needs a
// whole response body meets one larger than its limit.
const ResponseBodyTooLarge = "response_body_too_large"

// CacheRequestBody reads the whole request body (up to maxSize, 413 beyond)
// so that it can be sent again: by retries, and to a circuit breaker's
// fallback. bodyClass is accepted for Spring compatibility; the body is kept
// as bytes.
var cacheRequestBody = filter.Factory{Fields: []string{"bodyClass", "maxSize"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	if _, err := a.String("bodyClass", ""); err != nil {
		return nil, err
	}
	limit, err := a.Size("maxSize", 256<<10)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("maxSize: must be more than 0")
	}
	return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if r.Body == nil || r.Body == http.NoBody {
			return next.RoundTrip(r)
		}
		if r.ContentLength > limit {
			return nil, tooLarge(limit)
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return nil, &exchange.Error{Status: http.StatusBadRequest, Reason: exchange.ClientBodyError, Err: err}
		}
		if int64(len(b)) > limit {
			return nil, tooLarge(limit)
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		r.ContentLength, r.TransferEncoding = int64(len(b)), nil
		return next.RoundTrip(r)
	}), nil
}}

func tooLarge(limit int64) *exchange.Error {
	return &exchange.Error{Status: http.StatusRequestEntityTooLarge, Reason: exchange.BodyTooLarge,
		Err: errors.New("request body larger than " + strconv.FormatInt(limit, 10) + " bytes")}
}

// RequestSize=5000000 answers 413, with an errorMessage header, to requests
// that declare a larger Content-Length, and cuts bodies of unknown length at
// maxSize (413 if nothing was sent to the backend yet).
var requestSize = filter.Factory{Fields: []string{"maxSize"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	limit, err := a.Size("maxSize", 5000000)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("maxSize: must be more than 0")
	}
	return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		if r.ContentLength > limit {
			resp := answer(r, http.StatusRequestEntityTooLarge)
			resp.Header.Set("errorMessage", "Request size is larger than permissible limit. Request size is "+
				readableBytes(r.ContentLength)+" where permissible limit is "+readableBytes(limit))
			return resp, nil
		}
		if r.ContentLength < 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(nil, r.Body, limit)
		}
		return next.RoundTrip(r)
	}), nil
}}

// readableBytes formats n as Spring's RequestSize message does: "6.0 MB".
func readableBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	exp, f := 0, float64(n)
	for f >= unit && exp < 6 {
		f /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", f, "KMGTPE"[exp-1])
}

// RemoveJsonAttributesResponseBody=id,color,true removes attributes from a
// JSON response body: from the top-level object (or the objects of a
// top-level array), or at every depth when deleteRecursively (the optional
// last shortcut value) is true. The body is read whole, up to maxSize (502
// beyond); bodies that are not JSON, or are content-encoded, pass unchanged.
var removeJSONAttributes = filter.Factory{Fields: []string{"fieldList...", "deleteRecursively", "maxSize"}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	fields := a.Strings("fieldList")
	recursive, err := a.Bool("deleteRecursively", false)
	if err != nil {
		return nil, err
	}
	if n := len(fields); !a.Has("deleteRecursively") && n > 1 {
		if b, err := strconv.ParseBool(fields[n-1]); err == nil && (strings.EqualFold(fields[n-1], "true") || strings.EqualFold(fields[n-1], "false")) {
			recursive, fields = b, fields[:n-1]
		}
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("fieldList: at least one attribute required")
	}
	limit, err := a.Size("maxSize", 1<<20)
	if err != nil {
		return nil, err
	}
	return filter.Func(func(r *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err != nil || !isJSON(resp.Header.Get("Content-Type")) || resp.Header.Get("Content-Encoding") != "" || resp.Body == nil {
			return resp, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err != nil {
			return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: exchange.UpstreamResetAfterStart, Err: err}
		}
		if int64(len(b)) > limit {
			return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: ResponseBodyTooLarge,
				Err: fmt.Errorf("response body larger than %d bytes", limit)}
		}
		out, err := removeJSON(b, fields, recursive)
		if err != nil {
			out = b // not JSON after all: pass it on as it was
		}
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
		resp.Header.Del("Transfer-Encoding")
		return resp, nil
	}), nil
}}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// removeJSON rewrites a JSON document without the named attributes, keeping
// the order and spelling of everything else.
func removeJSON(b []byte, fields []string, recursive bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(b))
	if err := copyJSON(dec, &out, fields, true, recursive); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return out.Bytes(), nil
}

func copyJSON(dec *json.Decoder, out *bytes.Buffer, fields []string, here, recursive bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			first := true
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key := kt.(string)
				if here && slices.Contains(fields, key) {
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return err
					}
					continue
				}
				if !first {
					out.WriteByte(',')
				}
				first = false
				kb, _ := json.Marshal(key)
				out.Write(kb)
				out.WriteByte(':')
				if err := copyJSON(dec, out, fields, recursive, recursive); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := copyJSON(dec, out, fields, here, recursive); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case json.Number:
		out.WriteString(t.String())
	case nil:
		out.WriteString("null")
	default:
		vb, _ := json.Marshal(t)
		out.Write(vb)
	}
	return nil
}
