package tracing

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/exchange"
)

func TestBegin(t *testing.T) {
	const trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name        string
		traceparent string
		wantTrace   string // "" = a new one
		wantFlags   byte
	}{
		{name: "valid, sampled", traceparent: "00-" + trace + "-" + span + "-01", wantTrace: trace, wantFlags: 1},
		{name: "valid, other flags kept", traceparent: "00-" + trace + "-" + span + "-09", wantTrace: trace, wantFlags: 9},
		{name: "future version with more fields", traceparent: "01-" + trace + "-" + span + "-01-extra", wantTrace: trace, wantFlags: 1},
		{name: "absent"},
		{name: "upper case", traceparent: "00-" + strings.ToUpper(trace) + "-" + span + "-01"},
		{name: "version ff", traceparent: "ff-" + trace + "-" + span + "-01"},
		{name: "version 00 with more fields", traceparent: "00-" + trace + "-" + span + "-01-x"},
		{name: "zero span", traceparent: "00-" + trace + "-0000000000000000-01"},
		{name: "short", traceparent: "00-" + trace + "-" + span},
		{name: "bad separator", traceparent: "00_" + trace + "-" + span + "-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr exchange.Trace
			Begin(&tr, tc.traceparent, "k=v")
			if tr.SpanID == [8]byte{} || tr.TraceID == [16]byte{} {
				t.Fatal("zero id")
			}
			got := hex.EncodeToString(tr.TraceID[:])
			if tc.wantTrace != "" {
				if got != tc.wantTrace || hex.EncodeToString(tr.ParentID[:]) != span || tr.State != "k=v" {
					t.Errorf("got trace %s parent %x state %q", got, tr.ParentID, tr.State)
				}
				if hex.EncodeToString(tr.SpanID[:]) == span {
					t.Error("the client's span id was kept as the gateway's")
				}
			} else if got == trace || Parent(&tr) || tr.State != "" {
				t.Errorf("a malformed or absent traceparent was followed: %s %x %q", got, tr.ParentID, tr.State)
			}
			if tr.Flags != tc.wantFlags {
				t.Errorf("flags %x, want %x", tr.Flags, tc.wantFlags)
			}
			tp := Traceparent(&tr)
			var back exchange.Trace
			if !parse(&back, tp) || back.TraceID != tr.TraceID || back.ParentID != tr.SpanID || back.Flags != tr.Flags {
				t.Errorf("Traceparent %q does not parse back", tp)
			}
		})
	}
}

func TestRequestIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	var tr exchange.Trace
	for range 1000 {
		id, tp := NewRequestIDAndTraceparent(&tr)
		if len(id) != 32 || len(tp) != 55 || seen[id] {
			t.Fatalf("id %q tp %q", id, tp)
		}
		seen[id] = true
	}
}
