package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// An upgraded connection (WebSocket, or any protocol after 101 Switching
// Protocols) is spliced both ways until either side ends. WebSocket
// connections are copied frame by frame, so that on drain the gateway can
// put a close frame (1001, going away) between two frames, to the client
// and to the backend, instead of cutting the connection.
type upgrade struct {
	client  net.Conn
	backend io.ReadWriteCloser
	ws      bool
	toClient,
	toBackend direction
}

// direction is one way of a spliced WebSocket.
type direction struct {
	sync.Mutex // held while a frame is being written this way
	// closed: a close frame went this way, relayed or the gateway's own
	// (drain). The frames that follow are dropped and the gateway sends no
	// close of its own: RFC 6455 §5.5.1 allows nothing after a close, and a
	// browser fails a connection that gets a second one (1006, wasClean false).
	closed bool
	n      int64 // bytes written this way
}

// upgrades are the spliced connections in progress.
type upgrades struct {
	mu  sync.Mutex
	set map[*upgrade]struct{}
	wg  sync.WaitGroup
}

// splice returns the bytes it copied to the backend and to the client.
func (h *Handler) splice(client net.Conn, buffered *bufio.Reader, backend io.ReadWriteCloser, ws bool) (toBackend, toClient int64) {
	u := &upgrade{client: client, backend: backend, ws: ws}
	h.ups.mu.Lock()
	if h.ups.set == nil {
		h.ups.set = map[*upgrade]struct{}{}
	}
	h.ups.set[u] = struct{}{}
	h.ups.wg.Add(1)
	h.ups.mu.Unlock()
	defer func() {
		h.ups.mu.Lock()
		delete(h.ups.set, u)
		h.ups.mu.Unlock()
		h.ups.wg.Done()
	}()
	done := make(chan struct{}, 2)
	go func() {
		u.copy(backend, io.MultiReader(buffered, client), &u.toBackend) // client → backend
		closeWrite(backend)
		done <- struct{}{}
	}()
	go func() {
		u.copy(client, backend, &u.toClient) // backend → client
		if ws {
			// The backend is gone: the gateway, the client's server, closes
			// first, as RFC 6455 §7.1.1 asks (a browser waits for it).
			client.Close()
		} else {
			closeWrite(client)
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	return u.toBackend.n, u.toClient.n
}

func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// copy copies src to dst; for WebSocket, one whole frame at a time under
// d's lock, dropping the frames that follow a close frame (d.closed).
func (u *upgrade) copy(dst io.Writer, src io.Reader, d *direction) {
	if !u.ws {
		n, _ := io.Copy(dst, src)
		d.n += n
		return
	}
	br := bufio.NewReaderSize(src, 4<<10)
	var hdr [14]byte
	for {
		// Read the header before taking the lock: an idle connection blocks here.
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		n := 2
		switch hdr[1] & 0x7f {
		case 126:
			n += 2
		case 127:
			n += 8
		}
		if hdr[1]&0x80 != 0 {
			n += 4 // masking key
		}
		if _, err := io.ReadFull(br, hdr[2:n]); err != nil {
			return
		}
		var size uint64
		switch hdr[1] & 0x7f {
		case 126:
			size = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			size = binary.BigEndian.Uint64(hdr[2:10])
		default:
			size = uint64(hdr[1] & 0x7f)
		}
		d.Lock()
		var err error
		if d.closed {
			_, err = io.CopyN(io.Discard, br, int64(size))
		} else {
			var w int
			var c int64
			w, err = dst.Write(hdr[:n])
			if err == nil {
				c, err = io.CopyN(dst, br, int64(size))
			}
			d.n += int64(w) + c
			d.closed = err == nil && hdr[0]&0x0f == opClose
		}
		d.Unlock()
		if err != nil {
			return
		}
	}
}

// opClose is the opcode of a WebSocket close frame.
const opClose = 0x8

// closeFrame is a WebSocket close frame with status 1001 (going away).
var closeFrame = []byte{0x88, 0x02, 0x03, 0xe9}

// maskedCloseFrame is the same frame as a client sends it (masked, key 0:
// RFC 6455 requires a mask from clients, not a random one from proxies).
var maskedCloseFrame = []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9}

// GoAway sends every WebSocket a close frame 1001 in both directions,
// between frames, and gives the two sides until ctx ends to finish their
// close handshake; then it closes what is left. Other upgraded connections
// are closed when ctx ends.
func (h *Handler) GoAway(ctx context.Context) (closed int) {
	h.ups.mu.Lock()
	list := make([]*upgrade, 0, len(h.ups.set))
	for u := range h.ups.set {
		list = append(list, u)
	}
	h.ups.mu.Unlock()
	for _, u := range list {
		if !u.ws {
			continue
		}
		u.toClient.Lock()
		if !u.toClient.closed {
			u.client.SetWriteDeadline(time.Now().Add(time.Second))
			u.client.Write(closeFrame)
			u.client.SetWriteDeadline(time.Time{})
			u.toClient.closed = true
		}
		u.toClient.Unlock()
		u.toBackend.Lock()
		if !u.toBackend.closed {
			u.backend.Write(maskedCloseFrame)
			u.toBackend.closed = true
		}
		u.toBackend.Unlock()
	}
	wait := make(chan struct{})
	go func() { h.ups.wg.Wait(); close(wait) }()
	select {
	case <-wait:
	case <-ctx.Done():
		h.ups.mu.Lock()
		for u := range h.ups.set {
			u.client.Close()
			u.backend.Close()
			closed++
		}
		h.ups.mu.Unlock()
	}
	return closed
}
