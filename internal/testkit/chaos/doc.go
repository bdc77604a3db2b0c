// Package chaos reproduces the upstream connection failures of
// shared/SCENARIOS.md (scenarios 1–11) against a gateway, with real
// processes and real sockets on 127.0.0.1, and counts every client-visible
// error, every duplicate POST and every lost POST.
//
// A run of one Scenario against one Proxy sets up an Env: test backends
// (package backend; in-process, or processes where one must be SIGTERMed or
// SIGKILLed), a latency relay in front of each (package relay, 1–5 ms each
// way, exact about FIN and RST, so that races that loopback hides really
// fire), the proxy started with the relays as its upstreams, and a Client
// that sends load with a unique X-Request-Id per request. Check then matches
// the client's Outcomes with the union of the backends' records.
//
// The Baseline proxy (httputil.ReverseProxy with Go's default Transport)
// must fail scenarios 1, 6 and 7; a pass of another proxy counts only
// because it does. Command runs any external proxy (Sluice, nginx, HAProxy,
// Caddy) from an embedded config template (templates/).
//
// Capabilities that only some proxies have are separate interfaces:
// EndpointSetter (scenario 8, endpoint draining) and H2CProxy (scenario 9,
// HTTP/2 to upstreams). A scenario whose capability is missing is skipped.
//
// What the relays cannot model: TCP keepalive probes are answered by the
// relay's own kernel, so in scenario 11 only idle retirement below L helps;
// and a refused connect can only be shown as refused while the relay is
// down (Relay.SetDown), which the scenarios do when a backend dies.
package chaos
