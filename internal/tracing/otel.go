package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// Options configure an Exporter.
type Options struct {
	// Endpoint is the OTLP/HTTP traces URL, like http://127.0.0.1:4318/v1/traces.
	Endpoint string
	// SampleRatio of new traces is recorded; a client's sampled flag is followed.
	SampleRatio float64
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// BatchTimeout is the longest a finished span waits before it is sent; default 5s.
	BatchTimeout time.Duration
}

// Exporter records the gateway's server spans with the OpenTelemetry SDK and
// sends them in batches over OTLP/HTTP (protobuf).
type Exporter struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// NewExporter returns an exporter; nothing is sent until a span ends.
func NewExporter(o Options) (*Exporter, error) {
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, err
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = 5 * time.Second
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(o.BatchTimeout)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", o.ServiceName))),
	)
	return &Exporter{tp: tp, tracer: tp.Tracer("github.com/sluice-gw/sluice")}, nil
}

// Shutdown sends the spans not yet sent and stops the exporter.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.tp.Shutdown(ctx) }

// Start starts the gateway's span for ex, whose Trace Begin filled: it
// becomes the child of the client's span, or the root of a new trace, and
// ex.Trace takes its ids and sampling decision. The returned func ends it.
func (e *Exporter) Start(ex *exchange.Exchange, method string) func(status int) {
	ctx := context.Background()
	t := &ex.Trace
	if Parent(t) {
		ts, _ := trace.ParseTraceState(t.State)
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: t.TraceID, SpanID: t.ParentID, TraceFlags: trace.TraceFlags(t.Flags), TraceState: ts, Remote: true,
		}))
	}
	_, span := e.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(ex.Start),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("server.address", ex.Host)))
	sc := span.SpanContext()
	t.TraceID, t.SpanID, t.Flags = sc.TraceID(), sc.SpanID(), byte(sc.TraceFlags())
	if !span.IsRecording() {
		return func(int) {}
	}
	return func(status int) {
		if ex.RouteID != "" {
			span.SetName(method + " " + ex.RouteID)
		}
		span.SetAttributes(
			attribute.Int("http.response.status_code", status),
			attribute.String("sluice.route", ex.RouteID),
			attribute.String("sluice.upstream", ex.Upstream),
			attribute.String("sluice.endpoint", ex.Endpoint),
			attribute.Int("sluice.attempts", ex.Attempts),
			attribute.String("sluice.request_id", ex.RequestID),
		)
		if ex.Reason != "" {
			span.SetAttributes(attribute.String("sluice.reason", ex.Reason))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, ex.Reason)
		}
		span.End()
	}
}
