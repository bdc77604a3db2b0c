package pool

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Stage is how far a request got before it failed. Retry decisions and
// metrics are made from it, so each stage means something precise.
type Stage uint8

const (
	// StageWait: no connection could be had (pool full and the wait ended). Nothing was sent.
	StageWait Stage = iota
	// StageDial: the connection could not be opened. Nothing was sent.
	StageDial
	// StageWrite: writing the request failed. Error.Written says how many
	// bytes the kernel accepted; 0 means nothing reached the backend.
	StageWrite
	// StageAwait: the request was written and no response byte arrived.
	StageAwait
	// StageHeaders: some response bytes arrived but not a whole, valid header block.
	StageHeaders
	// StageBody: the response headers arrived, the body failed part way.
	StageBody
	// StageClientBody: reading the client's request body failed; the
	// upstream is not at fault.
	StageClientBody
)

var stageNames = [...]string{"wait", "dial", "write", "await_response", "read_headers", "read_body", "client_body"}

func (s Stage) String() string { return stageNames[s] }

// Error is a failed round trip, with everything the retry logic may use.
type Error struct {
	Stage Stage
	// Reused reports whether the connection had served a request before.
	Reused bool
	// IdleAge is how long a reused connection had been idle.
	IdleAge time.Duration
	// Written is how many request bytes the kernel accepted.
	Written int64
	// Peer reports that the backend closed or reset the connection (as opposed
	// to a timeout or a local cancellation).
	Peer bool
	// Unread reports that the backend did not act on the request: the
	// connection's FIN came first and then an RST answered the request's
	// bytes, which a closed socket does (see conn.proveUnread); or the
	// request was sent whole into the close that ends the endpoint's
	// connections after a learned number of responses, which discards what
	// follows (see keepalive.go; an inference from two such closes).
	Unread bool
	Err    error

	fin     bool // the whole request was sent, and a FIN came back with no response byte
	confirm int  // the connection may have ended at a response limit of this many
}

func (e *Error) Error() string { return e.Stage.String() + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NotSent reports whether the backend cannot have seen any of the request.
func (e *Error) NotSent() bool {
	return e.Stage == StageWait || e.Stage == StageDial || (e.Stage == StageWrite && e.Written == 0)
}

// NotProcessed reports whether the backend provably did not act on the
// request: nothing reached it, or nothing it received was read.
func (e *Error) NotProcessed() bool { return e.NotSent() || e.Unread }

// NoResponse reports whether no response byte was received.
func (e *Error) NoResponse() bool {
	return e.Stage <= StageAwait
}

// isPeerClose reports whether err means the other end closed or reset the connection.
func isPeerClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
