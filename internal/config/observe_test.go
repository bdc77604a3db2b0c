package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseObservabilityErrors(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "limits, queues, sampling, tracing",
			yaml: `
server: {max_concurrent_requests: -1, queue: {size: 2}}
admin: {ready_saturation_threshold: 1.5}
log: {access_fields: [method, trace, method], access_sample_2xx: two}
tracing: {enabled: true, endpoint: "collector:4318", sample_ratio: -0.1}
routes:
  - id: a
    uri: http://a:1
    max_concurrent_requests: -2
    adaptive_concurrency: {min_limit: 10, max_limit: 5, tolerance: 0.5, window: 0s}
    queue: {size: -1}
`,
			want: []string{
				`sluice.yaml:2:35: server.max_concurrent_requests: must be at least 0, got -1`,
				`sluice.yaml:2:46: server.queue.timeout: must be greater than 0 when size is set`,
				`sluice.yaml:3:37: admin.ready_saturation_threshold: must be between 0 and 1, got 1.5`,
				`sluice.yaml:4:31: log.access_fields[1]: "trace" is not one of method, path, route, upstream, endpoint, status, reason, attempts, duration, bytes_in, bytes_out, client, protocol, request_id, trace_id, span_id, host, user_agent`,
				`sluice.yaml:4:38: log.access_fields[2]: "method" is listed twice`,
				`sluice.yaml:4:66: log.access_sample_2xx: expected a number, got the string "two"`,
				`sluice.yaml:5:36: tracing.endpoint: "collector:4318" is not an http:// or https:// URL`,
				`sluice.yaml:5:68: tracing.sample_ratio: must be between 0 and 1, got -0.1`,
				`sluice.yaml:9:30: routes[0].max_concurrent_requests: must be at least 0, got -2`,
				`sluice.yaml:10:54: routes[0].adaptive_concurrency.max_limit: must be at least min_limit (10), got 5`,
				`sluice.yaml:10:68: routes[0].adaptive_concurrency.tolerance: must be at least 1, got 0.5`,
				`sluice.yaml:10:81: routes[0].adaptive_concurrency.window: must be greater than 0`,
				`sluice.yaml:11:19: routes[0].queue.size: must be at least 0, got -1`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestParseObservabilityValues(t *testing.T) {
	c, err := Parse("sluice.yaml", []byte(`
server: {max_concurrent_requests: 500, queue: {size: 50, timeout: 200ms}}
admin: {ready_saturation_threshold: 0.9}
log: {access_fields: [status, trace_id], access_sample_2xx: 0.1}
tracing: {enabled: true, endpoint: "http://127.0.0.1:4318/v1/traces", sample_ratio: 0.25}
routes:
  - id: a
    uri: http://a:1
    max_concurrent_requests: 40
    adaptive_concurrency: {min_limit: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	diff(t, c.Server.Queue, Queue{Size: 50, Timeout: 200 * time.Millisecond})
	diff(t, c.Server.MaxConcurrentRequests, 500)
	diff(t, c.Admin.ReadySaturationThreshold, 0.9)
	diff(t, c.Log.AccessFields, []string{"status", "trace_id"})
	diff(t, c.Log.AccessSample2xx, 0.1)
	diff(t, c.Tracing, Tracing{Enabled: true, Endpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 0.25, ServiceName: "sluice", BatchTimeout: 5 * time.Second})
	// The route's cap is the adaptive limit's ceiling; the initial limit fits in.
	diff(t, *c.Routes[0].AdaptiveConcurrency, AdaptiveConcurrency{MinLimit: 2, MaxLimit: 40, InitialLimit: 20, Tolerance: 2,
		Window: 100 * time.Millisecond, BaselineHalfLife: 30 * time.Second})
}
