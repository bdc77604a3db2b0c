package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSpringCommands checks convert scg, and validate and run on a Spring
// Cloud Gateway application.yml.
func TestSpringCommands(t *testing.T) {
	t.Parallel()
	valid := writeConfig(t,
		"spring:",
		"  cloud:",
		"    gateway:",
		"      routes:",
		"        - id: api",
		"          uri: http://127.0.0.1:9001",
		"          predicates: [Path=/api/**]",
		"          filters: [StripPrefix=1]",
		"logging.level.root: INFO",
	)
	unsupported := writeConfig(t,
		"spring.cloud.gateway.routes:",
		"  - id: api",
		"    uri: http://127.0.0.1:9001",
		"    filters:",
		"      - TokenRelay=",
		"      - StripPrefx=1",
	)
	native := writeConfig(t, "routes:", "  - id: api", "    uri: http://127.0.0.1:9001")
	locator := writeConfig(t,
		"spring.cloud.gateway.discovery.locator.enabled: true",
		"eureka.client.service-url.defaultZone: http://127.0.0.1:8761/eureka/",
	)
	malformed := writeConfig(t, "spring:", "  cloud: [a", "server: 1")
	tests := []struct {
		name       string
		argv       []string
		wantCode   int
		wantStdout []string // substrings; FILE stands for the argument's path
		wantStderr []string
		// wantNotStdout must not be in stdout.
		wantNotStdout string
	}{
		{name: "convert", argv: []string{"convert", "scg", valid}, wantCode: 0,
			wantStdout: []string{"server:\n  listen: :8080\n  host_include_port: true\n  forwarded_prefix: true\nroutes:\n  - id: api\n    uri: http://127.0.0.1:9001\n"},
			wantStderr: []string{"warning: FILE:9:1: logging.level.root: ignored: not gateway configuration"}},
		{name: "convert lists what it cannot convert, still converts, and fails", argv: []string{"convert", "scg", unsupported}, wantCode: 1,
			wantStdout: []string{"      - TokenRelay=\n      - StripPrefx=1\n"},
			wantStderr: []string{"error: FILE:5:9: spring.cloud.gateway.routes[0].filters[0]: not supported: TokenRelay: "}},
		{name: "convert a discovery locator: validate accepts it, a native config cannot hold it", argv: []string{"convert", "scg", locator}, wantCode: 1,
			wantStderr: []string{"error: FILE:1:49: spring.cloud.gateway.discovery.locator.enabled: not supported in a native config: the discovery locator's routes"}},
		{name: "validate a discovery locator", argv: []string{"validate", "-c", locator}, wantCode: 0, wantStdout: []string{"ok\n"}},
		{name: "convert a native config", argv: []string{"convert", "scg", native}, wantCode: 1,
			wantStderr: []string{"FILE: not a Spring application.yml (no top-level spring key)"}},
		{name: "convert malformed YAML", argv: []string{"convert", "scg", malformed}, wantCode: 1,
			wantStderr: []string{"FILE:2:"}},
		{name: "convert without a format", argv: []string{"convert", valid}, wantCode: 2, wantStderr: []string{"usage: sluice convert scg "}},
		{name: "convert a missing file", argv: []string{"convert", "scg", valid + ".missing"}, wantCode: 1, wantStderr: []string{"no such file"}},
		{name: "validate a Spring file", argv: []string{"validate", "-c", valid}, wantCode: 0, wantStdout: []string{"ok\n"},
			wantStderr: []string{"warning: FILE:9:1: logging.level.root"}},
		{name: "validate reports Spring positions and paths", argv: []string{"validate", "--config", unsupported}, wantCode: 1,
			wantStdout: []string{
				"FILE:5:9: spring.cloud.gateway.routes[0].filters[0]: not supported: TokenRelay: ",
				"FILE:6:9: spring.cloud.gateway.routes[0].filters[1]: unknown filter \"StripPrefx\" (did you mean StripPrefix?)",
			}},
		{name: "validate reports a filter the import rejected once", argv: []string{"validate", "--config", unsupported}, wantCode: 1,
			wantNotStdout: `unknown filter "TokenRelay"`},
		{name: "run refuses a Spring file with unsupported parts", argv: []string{"run", "--config", unsupported}, wantCode: 1,
			wantStderr: []string{"FILE:5:9: spring.cloud.gateway.routes[0].filters[0]: not supported: TokenRelay: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := tc.argv[len(tc.argv)-1]
			var out, errOut bytes.Buffer
			code := run(tc.argv, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, errOut.String())
			}
			for _, w := range tc.wantStdout {
				if w = strings.ReplaceAll(w, "FILE", file); !strings.Contains(out.String(), w) {
					t.Errorf("stdout:\n%s\nwant it to contain:\n%s", out.String(), w)
				}
			}
			if tc.wantNotStdout != "" && strings.Contains(out.String(), tc.wantNotStdout) {
				t.Errorf("stdout:\n%s\nwant it without %s", out.String(), tc.wantNotStdout)
			}
			for _, w := range tc.wantStderr {
				if w = strings.ReplaceAll(w, "FILE", file); !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr:\n%s\nwant it to contain:\n%s", errOut.String(), w)
				}
			}
		})
	}
}
