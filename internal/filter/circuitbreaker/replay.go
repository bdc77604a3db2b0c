package circuitbreaker

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// maxReplay bounds the request body kept for a fallback (CacheRequestBody's
// default maxSize): a fallback of a request whose body was larger, and that
// the backend read beyond it, answers 502 rather than get a cut body.
const maxReplay = 256 << 10

// replayBody is a request body that keeps what the backend read of it, so
// that a fallback gets the whole body: what was read, then the rest. The
// transport may still read it after RoundTrip returned; once detached, it
// reads EOF, and the fallback owns the rest.
type replayBody struct {
	mu       sync.Mutex
	body     io.ReadCloser
	seen     bytes.Buffer
	over     bool // more than maxReplay bytes read: no replay
	detached bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if !b.over {
		if b.seen.Len()+n > maxReplay {
			b.over = true
			b.seen = bytes.Buffer{}
		} else {
			b.seen.Write(p[:n])
		}
	}
	return n, err
}

// Close leaves the client's body open for the fallback; the server closes it.
func (b *replayBody) Close() error { return nil }

// errNoReplay says a fallback cannot have the request body.
var errNoReplay = errors.New("the request body was larger than 256 KiB and partly sent to the backend: it cannot be sent to the fallback (use CacheRequestBody)")

// detach ends reads by the backend and returns the whole body for the fallback.
func (b *replayBody) detach() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	if b.over {
		return nil, &exchange.Error{Status: http.StatusBadGateway, Reason: "fallback_failed", Err: errNoReplay}
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b.seen.Bytes()), b.body)), nil
}

// keepBody makes r's body replayable for a fallback, unless it has none or
// is replayable already (CacheRequestBody).
func keepBody(r *http.Request) *replayBody {
	if r.Body == nil || r.Body == http.NoBody || r.GetBody != nil {
		return nil
	}
	rb := &replayBody{body: r.Body}
	r.Body = rb
	return rb
}
