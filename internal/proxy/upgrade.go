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
	toBackend sync.Mutex // held while a frame is being written in that direction
}

// upgrades are the spliced connections in progress.
type upgrades struct {
	mu  sync.Mutex
	set map[*upgrade]struct{}
	wg  sync.WaitGroup
}

func (h *Handler) splice(client net.Conn, buffered *bufio.Reader, backend io.ReadWriteCloser, ws bool) {
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
		closeWrite(client)
		done <- struct{}{}
	}()
	<-done
	<-done
}

func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// copy copies src to dst; for WebSocket, one whole frame at a time under mu.
func (u *upgrade) copy(dst io.Writer, src io.Reader, mu *sync.Mutex) {
	if !u.ws {
		io.Copy(dst, src)
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
		mu.Lock()
		_, err := dst.Write(hdr[:n])
		if err == nil {
			_, err = io.CopyN(dst, br, int64(size))
		}
		mu.Unlock()
		if err != nil {
			return
		}
	}
}

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
		u.client.SetWriteDeadline(time.Now().Add(time.Second))
		u.client.Write(closeFrame)
		u.client.SetWriteDeadline(time.Time{})
		u.toClient.Unlock()
		u.toBackend.Lock()
		u.backend.Write(maskedCloseFrame)
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
