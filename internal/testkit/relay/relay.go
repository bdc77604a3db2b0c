// Package relay is a latency-injecting TCP relay for tests. It sits between a
// client (usually the gateway) and a backend on 127.0.0.1 and makes loopback
// behave like a network with a one-way delay, so that a FIN and a request can
// cross each other as they do between real hosts.
//
// The relay is exact about the order and timing of what it forwards. Every
// event read from one side is delivered to the other side after a delay of
// latency(), sampled per event, but never before the previous event of the
// same direction (no reordering):
//
//   - data is written as read;
//   - EOF (a FIN) becomes CloseWrite on the other side, a half-close: the
//     opposite direction keeps flowing;
//   - ECONNRESET (an RST), on read or on write, becomes an RST on the other
//     side (SO_LINGER 0, then Close);
//   - when both directions have delivered their FIN, both conns are closed.
//
// A refused dial to the target resets the accepted client conn after one
// latency. The client cannot see "connection refused": its connect already
// succeeded against the relay, so it sees ECONNRESET on its first read or
// write (or EOF if it only reads after the reset was processed). A
// single-target relay then goes down by itself (the kernel refuses connects,
// as through a real network path to a closed port) and comes back up as soon
// as the target accepts again, checked every 20ms; so only the first connect
// after a target stops listening is accepted and reset. Use [Relay.SetDown]
// to refuse at the TCP level from the start, as a dead host does.
package relay

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Relay forwards every accepted conn to a target. All methods are safe for
// concurrent use.
type Relay struct {
	latency func() time.Duration
	addr    string

	mu       sync.Mutex
	ln       net.Listener // nil while down
	targets  []string
	next     int
	links    map[*link]struct{}
	closed   bool
	dropIdle time.Duration
	// following: the relay went down because its target refused (see followTarget).
	following  bool
	manualDown bool // SetDown(true) was called: only SetDown(false) brings the relay up

	accepted atomic.Int64
	wg       sync.WaitGroup
}

// Start listens on 127.0.0.1:0 and relays every accepted conn to target with
// the given one-way latency per event (nil means none).
func Start(target string, latency func() time.Duration) (*Relay, error) {
	if latency == nil {
		latency = func() time.Duration { return 0 }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{
		latency: latency,
		addr:    ln.Addr().String(),
		targets: []string{target},
		links:   make(map[*link]struct{}),
	}
	r.serve(ln)
	return r, nil
}

// Uniform returns a latency function sampling uniformly from [lo, hi].
func Uniform(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + rand.N(hi-lo+1)
	}
}

// Addr is the host:port clients dial. It stays the same across SetDown.
func (r *Relay) Addr() string { return r.addr }

// Accepted is the number of conns accepted so far.
func (r *Relay) Accepted() int64 { return r.accepted.Load() }

// Conns is the number of relayed conns currently open.
func (r *Relay) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.links)
}

// SetTarget points new conns at addr. Existing conns are not touched.
func (r *Relay) SetTarget(addr string) { r.SetTargets([]string{addr}) }

// SetTargets makes new conns go round-robin over addrs (which must not be
// empty). Existing conns are not touched.
func (r *Relay) SetTargets(addrs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append([]string(nil), addrs...)
	r.next = 0
}

// SetDropIdle makes the relay behave like a NAT or load balancer that
// forgets flows idle for d (no data in either direction): from then on it
// silently discards everything both sides send, without FIN or RST, as if
// the packets were dropped. Zero disables it. It applies to new conns.
func (r *Relay) SetDropIdle(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropIdle = d
}

// SetDown(true) closes the listening socket, so that new connects are
// refused by the kernel, as when the host behind the relay is dead; relayed
// conns are not touched. SetDown(false) listens again on the same address.
func (r *Relay) SetDown(down bool) error { return r.setDown(down, true) }

func (r *Relay) setDown(down, manual bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return net.ErrClosed
	}
	if manual {
		r.manualDown = down
	}
	if down {
		if r.ln != nil {
			r.ln.Close()
			r.ln = nil
		}
		return nil
	}
	if r.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.serveLocked(ln)
	return nil
}

// ForgetFlows makes every open relayed conn behave as if the target host had
// lost all connection state (a reboot or a new network namespace): nothing is
// sent to the client now, the target side is closed quietly, and the next
// data the client sends is answered with an RST after one latency, as the
// target's kernel answers a segment for an unknown connection. A client
// still waiting for an answer gets the RST after a retransmission timeout
// (200ms) plus one latency.
func (r *Relay) ForgetFlows() {
	r.mu.Lock()
	links := make([]*link, 0, len(r.links))
	for l := range r.links {
		links = append(links, l)
	}
	r.mu.Unlock()
	for _, l := range links {
		l.forget()
	}
}

// Close stops accepting, resets every relayed conn on both sides and waits
// for the relay's goroutines to end.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	links := make([]*link, 0, len(r.links))
	for l := range r.links {
		links = append(links, l)
	}
	r.mu.Unlock()
	for _, l := range links {
		l.abort(true)
	}
	r.wg.Wait()
	return nil
}

func (r *Relay) serve(ln net.Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serveLocked(ln)
}

func (r *Relay) serveLocked(ln net.Listener) {
	r.ln = ln
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return // closed by SetDown or Close
			}
			r.accepted.Add(1)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.handle(c.(*net.TCPConn))
			}()
		}
	}()
}

// followTarget mirrors a refusing single target: the relay stops listening
// until the target accepts again.
func (r *Relay) followTarget(target string) {
	r.mu.Lock()
	if len(r.targets) != 1 || r.following || r.closed || r.ln == nil {
		r.mu.Unlock()
		return
	}
	r.following = true
	r.ln.Close()
	r.ln = nil
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		back := false
		for i := 0; i < 3000 && !back; i++ { // 60s at most
			time.Sleep(20 * time.Millisecond)
			r.mu.Lock()
			stop := r.closed || r.manualDown || len(r.targets) != 1 || r.targets[0] != target || r.ln != nil
			r.mu.Unlock()
			if stop {
				break
			}
			if c, err := net.DialTimeout("tcp", target, time.Second); err == nil {
				c.Close()
				back = true
			}
		}
		r.mu.Lock()
		r.following = false
		up := back && r.ln == nil && !r.closed && !r.manualDown
		r.mu.Unlock()
		if up {
			r.setDown(false, false)
		}
	}()
}

func (r *Relay) pickTarget() (string, time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", 0, false
	}
	t := r.targets[r.next%len(r.targets)]
	r.next++
	return t, r.dropIdle, true
}

func (r *Relay) handle(client *net.TCPConn) {
	target, dropIdle, ok := r.pickTarget()
	if !ok {
		reset(client)
		return
	}
	// The SYN travels one way before the target can answer.
	time.Sleep(r.latency())
	c, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			r.followTarget(target)
		}
		time.Sleep(r.latency())
		reset(client)
		return
	}
	l := newLink(r, client, c.(*net.TCPConn), dropIdle)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		reset(client)
		reset(l.server)
		return
	}
	r.links[l] = struct{}{}
	r.mu.Unlock()
	l.run()
	r.mu.Lock()
	delete(r.links, l)
	r.mu.Unlock()
}

// reset closes c with an RST instead of a FIN.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

type kind int

const (
	kindData kind = iota
	kindFIN
	kindRST
)

type event struct {
	kind kind
	data []byte
	read time.Time // when the relay read it
}

// pipe is one direction of a link: events read from src, written to dst.
type pipe struct {
	src, dst *net.TCPConn
	q        chan event
	finDone  atomic.Bool   // the relay sent (or is sending) its FIN to dst
	readDone chan struct{} // closed when reading src has ended (EOF, RST or the link's end)
}

type link struct {
	r              *Relay
	client, server *net.TCPConn
	up, down       *pipe // client→server, server→client
	done           chan struct{}
	doneOnce       sync.Once
	fins           atomic.Int32 // FINs delivered; 2 ends the link
	lastActive     atomic.Int64 // unix nanos of the last data read
	dropIdle       time.Duration
	dropped        atomic.Bool // silently discarding everything
	forgotten      atomic.Bool // target state lost; next client data gets RST
	awaiting       atomic.Bool // the client sent data the server has not answered yet
}

func newLink(r *Relay, client, server *net.TCPConn, dropIdle time.Duration) *link {
	l := &link{
		r:        r,
		client:   client,
		server:   server,
		up:       &pipe{src: client, dst: server, q: make(chan event, 64), readDone: make(chan struct{})},
		down:     &pipe{src: server, dst: client, q: make(chan event, 64), readDone: make(chan struct{})},
		done:     make(chan struct{}),
		dropIdle: dropIdle,
	}
	l.lastActive.Store(time.Now().UnixNano())
	return l
}

func (l *link) run() {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); l.read(l.up) }()
	go func() { defer wg.Done(); l.read(l.down) }()
	go func() { defer wg.Done(); l.write(l.up, l.down) }()
	go func() { defer wg.Done(); l.write(l.down, l.up) }()
	if l.dropIdle > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); l.watchIdle() }()
	}
	wg.Wait()
}

// abort ends the link; with rst both conns are reset, otherwise closed.
func (l *link) abort(rst bool) {
	l.doneOnce.Do(func() {
		close(l.done)
		if rst {
			reset(l.client)
			reset(l.server)
		} else {
			l.client.Close()
			l.server.Close()
		}
	})
}

func (l *link) isDone() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// retransmitTimeout is how long a client's TCP waits before it retransmits
// unacknowledged data (Linux's minimum RTO).
const retransmitTimeout = 200 * time.Millisecond

func (l *link) forget() {
	l.forgotten.Store(true)
	l.server.Close() // the old target is gone; nothing of it reaches the client
	if l.awaiting.Load() {
		// Data in flight is retransmitted to the new host, which answers RST.
		l.push(l.down, event{kind: kindRST, read: time.Now().Add(retransmitTimeout)})
	}
}

func (l *link) watchIdle() {
	tick := time.NewTicker(l.dropIdle / 10)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
			idle := time.Since(time.Unix(0, l.lastActive.Load()))
			if idle >= l.dropIdle {
				l.dropped.Store(true)
				return
			}
		}
	}
}

// push queues e for p's writer; false if the link ended meanwhile.
func (l *link) push(p *pipe, e event) bool {
	select {
	case p.q <- e:
		return true
	case <-l.done:
		return false
	}
}

func (l *link) read(p *pipe) {
	defer close(p.readDone)
	fromClient := p == l.up
	for {
		buf := make([]byte, 32<<10)
		n, err := p.src.Read(buf)
		now := time.Now()
		if fromClient && l.forgotten.Load() && !l.isDone() {
			// The target's kernel no longer knows the flow: whatever the
			// client sends (data or FIN) is answered with an RST.
			l.push(l.down, event{kind: kindRST, read: now})
			return
		}
		if n > 0 {
			if l.dropped.Load() {
				continue // a silent middlebox drops it
			}
			l.lastActive.Store(now.UnixNano())
			l.awaiting.Store(fromClient)
			if !l.push(p, event{kind: kindData, data: buf[:n], read: now}) {
				return
			}
		}
		if err == nil {
			continue
		}
		if l.isDone() || (!fromClient && l.forgotten.Load()) {
			return
		}
		if l.dropped.Load() {
			// Whatever this side does is lost on the way; once both sides
			// have gone away there is nothing left to relay.
			if l.fins.Add(1) == 2 {
				l.abort(false)
			}
			return
		}
		if errors.Is(err, io.EOF) {
			l.push(p, event{kind: kindFIN, read: now})
			// Data that reaches src after its FIN, once it has closed its
			// socket, is answered by its kernel with an RST that no read or
			// write of ours would see (a read after the FIN returns EOF,
			// and the data may have been written just before this EOF was
			// read). Watch for it until the relay sends its own FIN there.
			rev := l.up
			if p == l.up {
				rev = l.down
			}
			go l.watchReset(p.src, p, &rev.finDone)
		} else {
			// ECONNRESET, or anything else that ended the stream abruptly.
			l.push(p, event{kind: kindRST, read: now})
		}
		return
	}
}

// write delivers p's events to p.dst in order, each at
// max(read+latency, previous delivery). rev is the opposite direction, which
// is told when p.dst resets the relay.
func (l *link) write(p *pipe, rev *pipe) {
	var last time.Time
	broken := false // p.dst refused a write: discard the rest
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var e event
		select {
		case e = <-p.q:
		case <-l.done:
			return
		}
		at := e.read.Add(l.r.latency())
		if at.Before(last) {
			at = last
		}
		last = at
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-l.done:
				return
			}
		}
		if l.dropped.Load() {
			continue
		}
		switch e.kind {
		case kindData:
			if broken {
				continue
			}
			if _, err := p.dst.Write(e.data); err != nil {
				if l.isDone() {
					return
				}
				broken = true
				if isReset(err) {
					// The far side answered with an RST; it travels back,
					// after the FIN that side may have sent first: rev's
					// reader queues that FIN before it stops reading.
					go func() {
						select {
						case <-rev.readDone:
							l.push(rev, event{kind: kindRST, read: time.Now()})
						case <-l.done:
						}
					}()
				}
			}
		case kindFIN:
			if !p.finDone.Load() {
				p.finDone.Store(true)
				p.dst.CloseWrite()
				if l.fins.Add(1) == 2 {
					l.abort(false)
					return
				}
			}
		case kindRST:
			l.abort(true)
			return
		}
	}
}

// watchReset waits up to a second for c, which has sent its FIN, to be
// reset, and sends the RST on through p (whose src is c), as a router would
// pass it on. It stops once the relay has sent c its own FIN: the normal
// close that follows ends in the same TCP state as a reset.
func (l *link) watchReset(c *net.TCPConn, p *pipe, finSent *atomic.Bool) {
	for i := 0; i < 1000 && !l.isDone() && !finSent.Load(); i++ {
		if wasReset(c) {
			if !finSent.Load() {
				l.push(p, event{kind: kindRST, read: time.Now()})
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
