package gateway_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

var (
	hex32       = regexp.MustCompile(`^[0-9a-f]{32}$`)
	traceparent = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
)

// accessLines returns the access-log lines logged so far.
func accessLines(log *gatewaytest.SafeBuffer) []map[string]any {
	var out []map[string]any
	for _, l := range log.JSONLines() {
		if l["msg"] == "access" {
			out = append(out, l)
		}
	}
	return out
}

func TestRequestIDAndTraceContext(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	var log gatewaytest.SafeBuffer
	g := gatewaytest.Start(t, `
		routes:
		  - id: api
		    uri: http://`+be.Addr()+`
		`, gatewaytest.WithLog(&log))
	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name       string
		header     map[string]string
		wantID     string // "" = generated
		wantTrace  string // "" = a new trace
		wantFlags  string
		wantState  string
		wantParent bool
	}{
		{name: "none: ids and a trace are made", wantFlags: "00"},
		{name: "client's id and sampled trace are kept, with a new span",
			header: map[string]string{"X-Request-Id": "req-1", "Traceparent": "00-" + clientTrace + "-" + clientSpan + "-01", "Tracestate": "congo=t61rcWkgMzE"},
			wantID: "req-1", wantTrace: clientTrace, wantFlags: "01", wantState: "congo=t61rcWkgMzE", wantParent: true},
		{name: "unsampled client trace stays unsampled",
			header:    map[string]string{"Traceparent": "00-" + clientTrace + "-" + clientSpan + "-00"},
			wantTrace: clientTrace, wantFlags: "00", wantParent: true},
		{name: "malformed traceparent starts a new trace, drops tracestate",
			header:    map[string]string{"Traceparent": "00-" + strings.ToUpper(clientTrace) + "-" + clientSpan + "-01", "Tracestate": "a=b"},
			wantFlags: "00"},
		{name: "all-zero trace id is invalid",
			header:    map[string]string{"Traceparent": "00-00000000000000000000000000000000-" + clientSpan + "-01"},
			wantFlags: "00"},
	}
	c := gatewaytest.Client(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/x"), nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, body := gatewaytest.Do(t, c, req)
			seen := gatewaytest.DecodeSeen(t, body)
			id := resp.Header.Get("X-Request-Id")
			if tc.wantID != "" && id != tc.wantID || tc.wantID == "" && !hex32.MatchString(id) {
				t.Errorf("response X-Request-Id %q", id)
			}
			if got := seen.Header["X-Request-Id"]; len(got) != 1 || got[0] != id {
				t.Errorf("backend saw X-Request-Id %q, client got %q", got, id)
			}
			tp := seen.Header["Traceparent"]
			if len(tp) != 1 || !traceparent.MatchString(tp[0]) {
				t.Fatalf("backend saw traceparent %q", tp)
			}
			m := traceparent.FindStringSubmatch(tp[0])
			if tc.wantTrace != "" && m[1] != tc.wantTrace {
				t.Errorf("trace id %s, want %s", m[1], tc.wantTrace)
			}
			if m[2] == clientSpan {
				t.Errorf("the client's span id was passed on as the parent; want the gateway's own")
			}
			if m[3] != tc.wantFlags {
				t.Errorf("flags %s, want %s", m[3], tc.wantFlags)
			}
			if got := strings.Join(seen.Header["Tracestate"], ","); got != tc.wantState {
				t.Errorf("tracestate %q, want %q", got, tc.wantState)
			}
			var line map[string]any
			gatewaytest.Eventually(2*time.Second, func() bool {
				for _, l := range accessLines(&log) {
					if l["request_id"] == id {
						line = l
						return true
					}
				}
				return false
			})
			if line == nil {
				t.Fatalf("no access-log line with request_id %s", id)
			}
			if line["trace_id"] != m[1] || line["span_id"] != m[2] {
				t.Errorf("access log trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"], m[1], m[2])
			}
		})
	}
}

func TestAccessLogFieldsAndSampling(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	tests := []struct {
		name       string
		logConfig  string
		wantLines  int // of 20 2xx requests and one 404
		wantFields []string
	}{
		{name: "defaults: every line, every field", wantLines: 21, wantFields: []string{"method", "path", "route", "upstream",
			"endpoint", "status", "reason", "attempts", "duration", "bytes_in", "bytes_out", "client", "protocol",
			"request_id", "trace_id", "span_id", "host", "user_agent"}},
		{name: "fields chosen, no 2xx logged", logConfig: "access_fields: [status, trace_id, route]\naccess_sample_2xx: 0",
			wantLines: 1, wantFields: []string{"status", "trace_id", "route"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log gatewaytest.SafeBuffer
			g := gatewaytest.Start(t, `
				routes:
				  - id: api
				    uri: http://`+be.Addr()+`
				    predicates: [Path=/api/**]
				`, gatewaytest.WithLog(&log), gatewaytest.WithLogConfig(tc.logConfig))
			for range 20 {
				gatewaytest.Get(t, g, "/api/x")
			}
			if resp, _ := gatewaytest.Get(t, g, "/nowhere"); resp.StatusCode != 404 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			lines := accessLines(&log)
			if len(lines) != tc.wantLines {
				t.Fatalf("%d access lines, want %d", len(lines), tc.wantLines)
			}
			last := lines[len(lines)-1]
			if last["status"] != 404.0 {
				t.Errorf("the 404 was not logged: %v", last)
			}
			var keys []string
			for k := range last {
				if k != "time" && k != "level" && k != "msg" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			want := slices.Sorted(slices.Values(tc.wantFields))
			if !slices.Equal(keys, want) {
				t.Errorf("fields %v, want %v", keys, want)
			}
		})
	}
}

// otlpReceiver is an OTLP/HTTP traces endpoint on loopback that decodes
// what it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	attrs []map[string]string // resource attributes, per span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var msg coltrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(b, &msg) != nil {
			t.Errorf("bad OTLP request: %s %s %q", req.URL.Path, req.Header.Get("Content-Type"), b)
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			res := map[string]string{}
			for _, kv := range rs.Resource.GetAttributes() {
				res[kv.Key] = kv.Value.GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, s)
					r.attrs = append(r.attrs, res)
				}
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) span(traceID string) (*tracepb.Span, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			return s, r.attrs[i]
		}
	}
	return nil, nil
}

func TestTracingExport(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	rcv := newOTLPReceiver(t)
	g := gatewaytest.Start(t, `
		tracing:
		  enabled: true
		  endpoint: `+rcv.URL+`/v1/traces
		  service_name: edge
		  batch_timeout: 50ms
		routes:
		  - id: api
		    uri: http://`+be.Addr()+`
		`)
	const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	tests := []struct {
		name        string
		traceparent string
		wantParent  string // "" = a root span
		wantNone    bool   // not sampled: nothing exported
	}{
		{name: "child of the client's sampled span", traceparent: "00-" + clientTrace + "-" + clientSpan + "-01", wantParent: clientSpan},
		{name: "root of a new trace", traceparent: ""},
		{name: "client's unsampled trace is not recorded", traceparent: "00-1af7651916cd43dd8448eb211c80319c-" + clientSpan + "-00", wantNone: true},
	}
	c := gatewaytest.Client(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gatewaytest.URL(g, "/orders/7"), nil)
			if tc.traceparent != "" {
				req.Header.Set("Traceparent", tc.traceparent)
			}
			resp, body := gatewaytest.Do(t, c, req)
			if resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			m := traceparent.FindStringSubmatch(gatewaytest.DecodeSeen(t, body).Header["Traceparent"][0])
			var span *tracepb.Span
			var res map[string]string
			gatewaytest.Eventually(3*time.Second, func() bool { span, res = rcv.span(m[1]); return span != nil })
			if tc.wantNone {
				if span != nil {
					t.Fatalf("an unsampled trace was exported: %v", span)
				}
				if m[3] != "00" {
					t.Errorf("flags %s upstream, want 00", m[3])
				}
				return
			}
			if span == nil {
				t.Fatalf("no span of trace %s exported", m[1])
			}
			if got := hex.EncodeToString(span.SpanId); got != m[2] {
				t.Errorf("span id %s, but the upstream's parent is %s", got, m[2])
			}
			if got := hex.EncodeToString(span.ParentSpanId); got != tc.wantParent {
				t.Errorf("parent span id %q, want %q", got, tc.wantParent)
			}
			if m[3] != "01" {
				t.Errorf("flags %s upstream, want 01 (sampled)", m[3])
			}
			if span.Name != "GET api" || span.Kind != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("span %q kind %v", span.Name, span.Kind)
			}
			attrs := map[string]any{}
			for _, kv := range span.Attributes {
				if v, ok := kv.Value.Value.(*commonpb.AnyValue_StringValue); ok {
					attrs[kv.Key] = v.StringValue
				} else {
					attrs[kv.Key] = kv.Value.GetIntValue()
				}
			}
			if attrs["http.response.status_code"] != int64(200) || attrs["sluice.route"] != "api" || attrs["sluice.endpoint"] != be.Addr() {
				t.Errorf("attributes %v", attrs)
			}
			if res["service.name"] != "edge" {
				t.Errorf("resource %v", res)
			}
		})
	}
}

// TestTracingOffStartsNoSDK: with tracing off, the gateway builds no exporter.
func TestTracingOffStartsNoSDK(t *testing.T) {
	t.Parallel()
	be := gatewaytest.NewEcho(t, "be")
	g := gatewaytest.Start(t, `
		routes:
		  - id: api
		    uri: http://`+be.Addr()+`
		`)
	if gateway.SpansEnabled(g) {
		t.Fatal("an exporter was started with tracing off")
	}
}
