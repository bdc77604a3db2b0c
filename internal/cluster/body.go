package cluster

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// A request body is kept in memory, up to the policy's BufferLimit, so that
// a try that failed before the backend could act on it can be replayed. A
// larger body is streamed and the request is retried only where nothing of
// it was consumed (a failed dial).

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// replay is a buffered request body, readable again for each try.
type replay struct {
	buf *[]byte
	rd  bytes.Reader
	// body is what each try sends: a NopCloser around rd, which
	// (*http.Request).Write knows is in memory, so it writes the request in
	// one piece instead of flushing the headers first.
	body io.ReadCloser
}

func (r *replay) Read(p []byte) (int, error) { return r.rd.Read(p) }
func (r *replay) Close() error               { return nil }
func (r *replay) rewind()                    { r.rd.Reset(*r.buf) }
func (r *replay) fresh() io.ReadCloser       { return io.NopCloser(bytes.NewReader(*r.buf)) }
func (r *replay) free() {
	if cap(*r.buf) <= 1<<20 {
		*r.buf = (*r.buf)[:0]
		bufPool.Put(r.buf)
	}
}

// errClientBody marks a failure to read the client's body.
type errClientBody struct{ err error }

func (e errClientBody) Error() string { return "reading request body: " + e.err.Error() }
func (e errClientBody) Unwrap() error { return e.err }

// bufferBody reads req's body into memory when it fits in limit. It returns
// the replay buffer (nil when the body is empty or streamed) and sets
// req.Body to what each try should send.
func bufferBody(req *http.Request, limit int64) (*replay, error) {
	if req.Body == nil || req.Body == http.NoBody {
		req.Body = nil
		return nil, nil
	}
	if req.ContentLength > limit {
		return nil, nil // streamed
	}
	buf := bufPool.Get().(*[]byte)
	b := (*buf)[:0]
	n := limit + 1
	if req.ContentLength >= 0 {
		n = req.ContentLength
	}
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		end := cap(b)
		if int64(end) > n {
			end = int(n)
		}
		m, err := req.Body.Read(b[len(b):end])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			(&replay{buf: buf}).free()
			return nil, errClientBody{err}
		}
	}
	*buf = b
	if int64(len(b)) > limit {
		// A chunked body larger than the limit: send what was read, then the rest.
		rest := req.Body
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), rest), rest}
		return nil, nil
	}
	if req.ContentLength >= 0 && int64(len(b)) < req.ContentLength {
		return nil, errClientBody{io.ErrUnexpectedEOF}
	}
	req.Body.Close()
	r := &replay{buf: buf}
	r.body = io.NopCloser(&r.rd)
	r.rewind()
	req.Body = r.body
	if req.Trailer == nil {
		req.ContentLength = int64(len(b))
		req.TransferEncoding = nil
	}
	return r, nil
}

var errBodyTooLarge = errors.New("request body too large")
