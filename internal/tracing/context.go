// Package tracing carries W3C trace context through the gateway and, when
// enabled, exports the gateway's spans over OTLP. Parsing, starting and
// formatting trace context (this file) is plain code that costs a few
// hundred nanoseconds per request; the OpenTelemetry SDK (otel.go) is used
// only when export is on.
package tracing

import (
	"encoding/hex"
	"math/rand/v2"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// Begin fills t from the request's traceparent and tracestate headers: the
// client's span becomes the parent and a new span id is the gateway's. A
// missing or malformed traceparent starts a new trace, unsampled (flags 00:
// the gateway records nothing unless an Exporter decides otherwise).
func Begin(t *exchange.Trace, traceparent, tracestate string) {
	if parse(t, traceparent) {
		t.State = tracestate
	} else {
		*t = exchange.Trace{}
		putRandom(t.TraceID[:])
	}
	putRandom(t.SpanID[:])
}

// Parent reports whether the trace came from the client.
func Parent(t *exchange.Trace) bool { return t.ParentID != [8]byte{} }

// parse reads a version-00 traceparent ("00-<32 hex>-<16 hex>-<2 hex>");
// later versions are read by their first four fields, as the spec asks.
func parse(t *exchange.Trace, s string) bool {
	if len(s) < 55 || (len(s) > 55 && s[55] != '-') || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	var ver [1]byte
	if !decodeHex(ver[:], s[0:2]) || ver[0] == 0xff || (ver[0] == 0 && len(s) != 55) {
		return false
	}
	if !decodeHex(t.TraceID[:], s[3:35]) || !decodeHex(t.ParentID[:], s[36:52]) {
		return false
	}
	var fl [1]byte
	if !decodeHex(fl[:], s[53:55]) || t.TraceID == [16]byte{} || t.ParentID == [8]byte{} {
		return false
	}
	t.Flags = fl[0]
	return true
}

// decodeHex decodes lower-case hex only, as the spec requires.
func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// putRandom fills b with random bytes, never all zero. math/rand/v2's
// top-level source is per-thread: no lock is shared between requests.
func putRandom(b []byte) {
	for {
		for i := 0; i < len(b); i += 8 {
			v := rand.Uint64()
			for j := i; j < i+8 && j < len(b); j++ {
				b[j] = byte(v)
				v >>= 8
			}
		}
		for _, c := range b {
			if c != 0 {
				return
			}
		}
	}
}

// Traceparent formats the header the gateway sends upstream: its own span
// as the parent.
func Traceparent(t *exchange.Trace) string {
	var b [55]byte
	putTraceparent(b[:], t)
	return string(b[:])
}

func putTraceparent(b []byte, t *exchange.Trace) {
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], t.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], t.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{t.Flags})
}

// NewRequestIDAndTraceparent is NewRequestID and Traceparent in one
// allocation.
func NewRequestIDAndTraceparent(t *exchange.Trace) (id, traceparent string) {
	var b [32 + 55]byte
	var r [16]byte
	putRandom(r[:])
	hex.Encode(b[:32], r[:])
	putTraceparent(b[32:], t)
	s := string(b[:])
	return s[:32], s[32:]
}

// TraceID returns the trace id in hex (the access log's trace_id).
func TraceID(t *exchange.Trace) string { return hex.EncodeToString(t.TraceID[:]) }

// SpanID returns the gateway's span id in hex.
func SpanID(t *exchange.Trace) string { return hex.EncodeToString(t.SpanID[:]) }

// NewRequestID returns 32 random hex digits.
func NewRequestID() string {
	var b [16]byte
	putRandom(b[:])
	var s [32]byte
	hex.Encode(s[:], b[:])
	return string(s[:])
}
