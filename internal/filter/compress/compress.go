// Package compress gzips responses for clients that accept it, the way
// Spring Boot's server.compression does: only listed content types, only
// bodies of at least a minimum size, never a body that is already encoded,
// never an event stream. Bodies stay streamed: each chunk read from the
// backend is compressed and flushed on its own.
package compress

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/filter"
)

// DefaultTypes are Spring Boot's server.compression.mime-types.
var DefaultTypes = []string{"text/html", "text/xml", "text/plain", "text/css", "text/javascript",
	"application/javascript", "application/json", "application/xml"}

// DefaultMinSize is Spring Boot's server.compression.min-response-size (2KB).
const DefaultMinSize = 2048

// Options say what to compress.
type Options struct {
	// MinSize is the smallest declared body compressed; bodies of unknown
	// length are compressed.
	MinSize int64
	// Types are media types (parameters ignored); "text/*" matches a family.
	Types []string
}

type compressor struct {
	min   int64
	types []string
}

// New returns a filter that compresses responses as o says.
func New(o Options) filter.Filter {
	if o.Types == nil {
		o.Types = DefaultTypes
	}
	c := &compressor{min: o.MinSize}
	for _, t := range o.Types {
		c.types = append(c.types, strings.ToLower(strings.TrimSpace(t)))
	}
	return c
}

// Factory is the per-route Compression filter: Compression=2KB,text/html,application/json.
var Factory = filter.Factory{Fields: []string{"min_size", "types..."}, New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
	n, err := a.Size("min_size", DefaultMinSize)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("min_size: must not be negative")
	}
	var types []string
	for _, t := range a.Strings("types") {
		if _, _, err := mime.ParseMediaType(t); err != nil {
			return nil, fmt.Errorf("types: %q is not a media type", t)
		}
		types = append(types, t)
	}
	return New(Options{MinSize: n, Types: types}), nil
}}

func (c *compressor) RoundTrip(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	resp, err := next.RoundTrip(r)
	if err != nil || !acceptsGzip(r.Header.Values("Accept-Encoding")) || !c.eligible(r, resp) {
		return resp, err
	}
	h := resp.Header
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et) // the bytes differ now
	}
	if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(strings.ToLower(v), "accept-encoding") }) {
		h.Add("Vary", "Accept-Encoding")
	}
	resp.ContentLength = -1
	resp.Body = newGzipBody(resp.Body)
	return resp, nil
}

func (c *compressor) eligible(r *http.Request, resp *http.Response) bool {
	if r.Method == http.MethodHead || resp.StatusCode < 200 || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusPartialContent ||
		resp.Body == nil || resp.Body == http.NoBody {
		return false
	}
	h := resp.Header
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if strings.Contains(strings.ToLower(h.Get("Cache-Control")), "no-transform") {
		return false
	}
	if resp.ContentLength >= 0 && resp.ContentLength < c.min {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt == "text/event-stream" {
		return false
	}
	for _, t := range c.types {
		if t == mt || (strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, t[:len(t)-1])) {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding: gzip (or *) with a q-value above 0.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					q, _ = strconv.ParseFloat(v, 64)
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

var writers = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}

// gzipBody compresses src as it is read: each read from src is written to
// the gzip stream and flushed, so a streamed body reaches the client chunk
// by chunk.
type gzipBody struct {
	src  io.ReadCloser
	zw   *gzip.Writer
	out  bytes.Buffer
	in   []byte
	done bool
	err  error
}

func newGzipBody(src io.ReadCloser) *gzipBody {
	b := &gzipBody{src: src, in: make([]byte, 32<<10)}
	b.zw = writers.Get().(*gzip.Writer)
	b.zw.Reset(&b.out)
	return b
}

func (b *gzipBody) Read(p []byte) (int, error) {
	if b.zw == nil {
		return 0, io.ErrClosedPipe
	}
	for b.out.Len() == 0 {
		if b.done {
			return 0, b.err
		}
		n, err := b.src.Read(b.in)
		if n > 0 {
			b.zw.Write(b.in[:n])
			b.zw.Flush()
		}
		if err != nil {
			b.done = true
			b.err = err
			if err == io.EOF {
				b.zw.Close()
			}
		}
	}
	return b.out.Read(p)
}

func (b *gzipBody) Close() error {
	if b.zw != nil {
		b.zw.Reset(io.Discard)
		writers.Put(b.zw)
		b.zw = nil
	}
	return b.src.Close()
}
