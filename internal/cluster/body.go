package cluster

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// A request body is kept in memory, up to the policy's BufferLimit, so that
// a try that failed before the backend could act on it can be replayed. A
// larger body is streamed and the request is retried only where nothing of
// it was consumed (a failed dial). A body already held whole in memory
// (InMemory: the proxy read it to enforce a route's size cap) is replayed
// as it is, whatever its size, and never copied again: this file is the one
// place request bodies are buffered for replay.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// InMemory returns a request body held whole in memory, b, which Forward
// replays without copying it. b must not change while the request is served.
func InMemory(b []byte) io.ReadCloser { return &inMemory{Reader: bytes.NewReader(b), b: b} }

type inMemory struct {
	*bytes.Reader
	b []byte
}

func (*inMemory) Close() error { return nil }

// replay is a buffered request body, readable again for each try.
type replay struct {
	buf    *[]byte
	pooled bool // buf came from bufPool and goes back to it
	rd     bytes.Reader
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
	if r.pooled && cap(*r.buf) <= 1<<20 {
		*r.buf = (*r.buf)[:0]
		bufPool.Put(r.buf)
	}
}

// errClientBody marks a failure to read the client's body.
type errClientBody struct{ err error }

func (e errClientBody) Error() string { return "reading request body: " + e.err.Error() }
func (e errClientBody) Unwrap() error { return e.err }

// bufferBody prepares req's body for tries. A body of known length within
// limit is read into memory at once (and sent in one write). A body of
// unknown length is not waited for — a streaming upload, or a gRPC stream,
// must flow as the client sends it — but recorded as it goes: if it ends
// within limit, a failed try can still replay it. A longer body is streamed
// and not recorded.
func bufferBody(req *http.Request, limit int64) (*replay, *recorder, error) {
	if req.Body == nil || req.Body == http.NoBody {
		req.Body = nil
		return nil, nil, nil
	}
	if m, ok := req.Body.(*inMemory); ok && int64(m.Len()) == int64(len(m.b)) {
		r := &replay{buf: &m.b}
		r.body = io.NopCloser(&r.rd)
		r.rewind()
		req.Body, req.ContentLength, req.TransferEncoding = r.body, int64(len(m.b)), nil
		return r, nil, nil
	}
	if req.ContentLength > limit {
		// Streamed, not recorded; the recorder still keeps the client's
		// read error, which (*http.Request).Write would hide.
		rec := &recorder{src: req.Body, over: true}
		req.Body = rec
		return nil, rec, nil
	}
	if req.ContentLength < 0 {
		rec := &recorder{src: req.Body, limit: limit}
		req.Body = rec
		return nil, rec, nil
	}
	buf := bufPool.Get().(*[]byte)
	b := (*buf)[:0]
	if int64(cap(b)) < req.ContentLength {
		b = make([]byte, 0, req.ContentLength)
	}
	b = b[:req.ContentLength]
	n, err := io.ReadFull(req.Body, b)
	*buf = b[:n]
	if err != nil {
		(&replay{buf: buf, pooled: true}).free()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, errClientBody{err}
	}
	r := &replay{buf: buf, pooled: true}
	r.body = io.NopCloser(&r.rd)
	r.rewind()
	req.Body = r.body
	return r, nil, nil
}

// recorder passes a body of unknown length through, keeping a copy of the
// first limit bytes. Close does not close the client's body: a failed try
// must not end the stream a retry may still send.
type recorder struct {
	src   io.ReadCloser
	limit int64
	buf   []byte
	n     int64 // bytes read from src
	eof   bool
	over  bool // more than limit bytes: not replayable
	err   error
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	r.n += int64(n)
	if n > 0 && !r.over {
		if int64(len(r.buf)+n) > r.limit {
			r.over, r.buf = true, nil
		} else {
			r.buf = append(r.buf, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil:
		r.err = err
		err = errClientBody{err}
	}
	return n, err
}

func (r *recorder) Close() error { return nil }

// resend returns what a retry sends: the untouched stream, or the whole
// recorded body; ok is false when neither is possible.
func (r *recorder) resend() (body io.ReadCloser, length int64, ok bool) {
	switch {
	case r.n == 0 && r.err == nil:
		return r, -1, true
	case r.eof && !r.over && r.err == nil:
		return io.NopCloser(bytes.NewReader(r.buf)), int64(len(r.buf)), true
	}
	return nil, 0, false
}

// body is a request's body as the tries see it: buffered (replay),
// recorded as it streams (recorder), or absent (a nil *body).
type body struct {
	replay *replay
	rec    *recorder
}

// prepareBody readies req's body for tries (see bufferBody); nil when the
// request has none.
func prepareBody(req *http.Request, limit int64) (*body, error) {
	replay, rec, err := bufferBody(req, limit)
	if err != nil || (replay == nil && rec == nil) {
		return nil, err
	}
	return &body{replay: replay, rec: rec}, nil
}

// rewind sets what the next try sends. A fresh reader every time: an
// HTTP/2 stream's writer may still hold the previous one.
func (b *body) rewind(req *http.Request) {
	switch {
	case b == nil:
	case b.replay != nil:
		req.Body = b.replay.fresh()
	case b.rec != nil:
		rd, n, _ := b.rec.resend() // next made sure it can
		req.Body, req.ContentLength = rd, n
		if n >= 0 {
			req.TransferEncoding = nil
		}
	}
}

// replayable reports whether the body can be sent again.
func (b *body) replayable(req *http.Request) bool {
	switch {
	case b == nil:
		return req.Body == nil
	case b.rec != nil:
		_, _, ok := b.rec.resend()
		return ok
	}
	return true
}

// clientErr is how reading the client's body failed, if it did.
func (b *body) clientErr() error {
	if b == nil || b.rec == nil {
		return nil
	}
	return b.rec.err
}

func (b *body) free() {
	if b != nil && b.replay != nil {
		b.replay.free()
	}
}
