package scg

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// noEnv is an empty environment.
func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// pendingBlocks are native blocks the converter emits that other branches
// add to the config package; until they are merged, the parse check below
// leaves them out.
var pendingBlocks = map[string]bool{"cors": true, "redis": true, "compression": true}

// TestGolden converts each testdata/*.yml and compares the native config,
// followed by every problem listed as a comment, with testdata/*.golden.yaml.
// A file converted without errors must parse with config.Parse.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(file, data, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			got.Write(res.Marshal())
			for _, e := range res.Errors {
				got.WriteString("# error: " + e.Error() + "\n")
			}
			for _, w := range res.Warnings {
				got.WriteString("# warning: " + w.Error() + "\n")
			}
			golden := strings.TrimSuffix(file, ".yml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs (go test -update rewrites it):\n%s", golden, got.String())
			}
			if len(res.Errors) > 0 {
				return
			}
			native := parseWithoutPending(t, got.Bytes())
			if _, err := config.Parse(golden, native); err != nil {
				t.Errorf("the converted config does not parse:\n%v", err)
			}
		})
	}
}

// parseWithoutPending returns the native YAML with the blocks in pendingBlocks
// removed if this build's config does not have them yet.
func parseWithoutPending(t *testing.T, data []byte) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	kept := root.Content[:0]
	for i := 0; i < len(root.Content); i += 2 {
		k := root.Content[i].Value
		if !nativeKeys()[k] {
			if !pendingBlocks[k] {
				t.Errorf("the converter emits %q, which config.Config does not have", k)
			}
			t.Logf("%q left out of the parse check: not in config.Config on this branch", k)
			continue
		}
		kept = append(kept, root.Content[i], root.Content[i+1])
	}
	root.Content = kept
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConvert checks single mappings and the problems reported, with their positions.
func TestConvert(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		// want are lines that must appear in the native YAML.
		want []string
		// errors and warnings are the exact problems, FILE standing for the file.
		errors, warnings []string
	}{
		{
			name: "relaxed binding: camelCase, kebab-case, snake_case and dotted keys",
			file: "spring:\n  cloud.gateway:\n    httpClient:\n      connect_timeout: 250\n      Pool: {MAX_IDLE_TIME: 2s, maxLifeTime: 1m}\n",
			want: []string{"  connect_timeout: 250ms", "    max_idle_time: 2s", "    max_lifetime: 1m"},
		},
		{
			name: "placeholders from the environment, the file and defaults",
			file: "server.port: ${PORT:8080}\nbackend: http://${HOST:localhost}:${backend-port}\nbackend-port: 7000\n" +
				"spring.cloud.gateway.routes:\n  - id: a\n    uri: ${backend}\n    predicates:\n      - Path=${PREFIX:/api}/**\n",
			env:      map[string]string{"PORT": "0", "HOST": "10.1.1.1"},
			want:     []string{"  listen: :0", "    uri: http://10.1.1.1:7000", "      - Path=/api/**"},
			warnings: []string{`FILE:2:1: backend: ignored: not gateway configuration`, `FILE:3:1: backend-port: ignored: not gateway configuration`},
		},
		{
			name: "placeholder from the environment in Spring's upper-case form",
			file: "spring.cloud.gateway.routes:\n  - id: a\n    uri: ${backend.uri}\n",
			env:  map[string]string{"BACKEND_URI": "http://127.0.0.1:9"},
			want: []string{"    uri: http://127.0.0.1:9"},
		},
		{
			name: "environment variables win over the file, as in Spring",
			file: "server.port: 8080\nspring.data.redis:\n  host: file-host\n  connect-timeout: 1s\n" +
				"spring.cloud.gateway.httpclient.response-timeout: 1s\n",
			env: map[string]string{"SERVER_PORT": "9000", "SPRING_DATA_REDIS_HOST": "env-host",
				"SPRING_DATA_REDIS_CONNECT_TIMEOUT": "3s", "SPRING_CLOUD_GATEWAY_HTTPCLIENT_RESPONSETIMEOUT": "7s"},
			want: []string{"  listen: :9000", "  address: env-host:6379", "  dial_timeout: 3s", "  response_timeout: 7s"},
		},
		{
			name:     "an environment variable for a property the file does not set",
			file:     "spring.application.name: x\n",
			env:      map[string]string{"SERVER_ADDRESS": "127.0.0.1", "SERVER_PORT": "x"},
			errors:   []string{`FILE:1:1: server.port ($SERVER_PORT): "x" is not an integer`},
			warnings: []string{`FILE:1:1: spring.application.name: ignored: not gateway configuration`},
		},
		{
			name: "an instance uri that is not a URL",
			file: "spring.cloud.discovery.client.simple.instances.users: [{uri: 'http://[::1'}]\n" +
				"spring.cloud.gateway.routes: [{id: a, uri: 'lb://users'}]\n",
			errors: []string{`FILE:1:62: spring.cloud.discovery.client.simple.instances.users[0].uri: "http://[::1" is not an instance uri like http://10.0.0.5:8080`},
		},
		{
			name: "aliases that expand a small file into a huge one",
			file: "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
				"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
				"g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
			errors: []string{`FILE:1:32: e[7][8][8][8][8]: too many values (aliases expanding?)`},
			warnings: []string{`FILE:1:1: a: ignored: not gateway configuration`, `FILE:2:1: b: ignored: not gateway configuration`,
				`FILE:3:1: c: ignored: not gateway configuration`, `FILE:4:1: d: ignored: not gateway configuration`,
				`FILE:5:1: e: ignored: not gateway configuration`, `FILE:6:1: f: ignored: not gateway configuration`,
				`FILE:7:1: g: ignored: not gateway configuration`},
		},
		{
			name: "placeholders that multiply",
			file: "a: ${b}${b}${b}${b}${b}${b}${b}${b}\nb: ${c}${c}${c}${c}${c}${c}${c}${c}\nc: ${d}${d}${d}${d}${d}${d}${d}${d}\n" +
				"d: ${e}${e}${e}${e}${e}${e}${e}${e}\ne: ${f}${f}${f}${f}${f}${f}${f}${f}\nf: x\nserver.port: ${a}\n",
			errors: []string{`FILE:7:14: server.port: more than 10000 placeholders to resolve in the file`},
			warnings: []string{`FILE:1:1: a: ignored: not gateway configuration`, `FILE:2:1: b: ignored: not gateway configuration`,
				`FILE:3:1: c: ignored: not gateway configuration`, `FILE:4:1: d: ignored: not gateway configuration`,
				`FILE:5:1: e: ignored: not gateway configuration`, `FILE:6:1: f: ignored: not gateway configuration`},
		},
		{
			name:   "placeholder without a value",
			file:   "spring.cloud.gateway.routes:\n  - id: a\n    uri: ${BACKEND_URI}\n",
			errors: []string{`FILE:3:10: spring.cloud.gateway.routes[0].uri: placeholder ${BACKEND_URI} has no value: set BACKEND_URI in the environment or give a default (${BACKEND_URI:value})`},
		},
		{
			name:   "placeholders in a cycle",
			file:   "a: ${b}\nb: ${a}\nserver.port: ${a}\n",
			errors: []string{`FILE:3:14: server.port: placeholders nested too deeply (or in a cycle)`},
			warnings: []string{`FILE:1:1: a: ignored: not gateway configuration`,
				`FILE:2:1: b: ignored: not gateway configuration`},
		},
		{
			name: "unknown filter of the JVM, with its line",
			file: "spring:\n  cloud:\n    gateway:\n      routes:\n        - id: a\n          uri: http://a:1\n          filters:\n            - SaveSession\n            - name: ModifyResponseBody\n",
			errors: []string{
				`FILE:8:15: spring.cloud.gateway.routes[0].filters[0]: not supported: SaveSession: it saves a Spring WebSession, which Sluice does not have`,
				`FILE:9:15: spring.cloud.gateway.routes[0].filters[1]: not supported: ModifyResponseBody: it runs Java code given in the Java DSL`,
			},
		},
		{
			name: "SpEL key resolver in the shortcut form",
			file: "spring.cloud.gateway.default-filters:\n  - RequestRateLimiter=#{@ipKeyResolver}\n",
			errors: []string{`FILE:2:5: spring.cloud.gateway.default-filters[0]: not supported: SpEL expressions (#{...}) name Java beans; ` +
				`for a key-resolver use client_ip, header:NAME, path:VARIABLE or user[:HEADER] (see docs/spring-import.md)`},
		},
		{
			name: "Spring's own principalNameKeyResolver is not user code",
			file: "spring.cloud.gateway.default-filters:\n  - name: RequestRateLimiter\n    args: {key-resolver: '#{@principalNameKeyResolver}'}\n",
			want: []string{"key-resolver: principal"},
		},
		{
			name: "unknown gateway property and unknown route key",
			file: "spring.cloud.gateway:\n  streaming-media-types: [text/event-stream]\n  routes:\n    - id: a\n      uri: http://a:1\n      filter: [StripPrefix=1]\n",
			errors: []string{
				`FILE:2:3: spring.cloud.gateway.streaming-media-types: not supported: Sluice has no equivalent of this Spring Cloud Gateway property`,
				`FILE:6:7: spring.cloud.gateway.routes[0].filter: not supported: Sluice has no equivalent of this Spring Cloud Gateway property`,
			},
		},
		{
			name:   "the same property twice under relaxed binding",
			file:   "spring.cloud.gateway.httpclient:\n  connect-timeout: 100\n  connectTimeout: 200\n",
			want:   []string{"  connect_timeout: 100ms"},
			errors: []string{`FILE:3:3: spring.cloud.gateway.httpclient.connect-timeout: duplicate property (first at line 2)`},
		},
		{
			name:   "a duration Spring would not read",
			file:   "spring.cloud.gateway.httpclient.response-timeout: 5 seconds\n",
			errors: []string{`FILE:1:51: spring.cloud.gateway.httpclient.response-timeout: "5 seconds" is not a duration (like 500ms, 10s or PT10S)`},
		},
		{
			name:     "management port becomes the admin port; -1 turns it off",
			file:     "spring.application.name: x\nmanagement.server.port: -1\n",
			want:     []string{"admin:\n  listen: off"},
			warnings: []string{`FILE:1:1: spring.application.name: ignored: not gateway configuration`},
		},
		{
			name: "lb:// without instances",
			file: "spring.cloud.gateway.routes:\n  - id: a\n    uri: lb://users\n",
			want: []string{"  users:\n    endpoints: []"},
			errors: []string{`FILE:3:10: spring.cloud.gateway.routes[0].uri: lb://users: Spring finds the instances of "users" by service discovery, ` +
				`and this file configures no registry Sluice reads (Nacos, Eureka, Consul, Kubernetes); list them under upstreams.users.endpoints in the converted config (sluice convert scg), ` +
				`or in this file as spring.cloud.discovery.client.simple.instances.users[0].uri`},
		},
		{
			name: "lb:// from Nacos",
			file: "spring:\n  cloud:\n    nacos:\n      discovery:\n        server-addr: nacos1:8848,nacos2:8848\n        namespace: dev\n" +
				"        group: SHOP\n        username: nacos\n        password: pw\n        watch-delay: 5000\n" +
				"    gateway.routes:\n      - id: a\n        uri: lb://user-service\n",
			want: []string{"  user-service:\n    discovery:\n      type: nacos\n      servers: ['nacos1:8848', 'nacos2:8848']\n      service: user-service\n" +
				"      namespace: dev\n      group: SHOP\n      username: nacos\n      password: pw\n      interval: 5s\n"},
		},
		{
			name: "lb:// from Eureka, own zone first",
			file: "eureka:\n  instance.metadata-map.zone: zone2\n  client:\n    registry-fetch-interval-seconds: 5\n    disable-delta: true\n" +
				"    serviceUrl:\n      defaultZone: http://e1:8761/eureka/,http://e2:8761/eureka/\n      zone2: http://e3:8761/eureka/\n" +
				"spring.cloud.gateway.routes:\n  - id: a\n    uri: lb://USER-SERVICE\n",
			want: []string{"  USER-SERVICE:\n    discovery:\n      type: eureka\n      servers: ['http://e3:8761/eureka/', 'http://e1:8761/eureka/', 'http://e2:8761/eureka/']\n" +
				"      service: USER-SERVICE\n      interval: 5s\n      delta: false\n"},
		},
		{
			name: "lb:// from Consul",
			file: "spring:\n  cloud:\n    consul:\n      host: consul.local\n      discovery:\n        acl-token: t0k\n        default-query-tag: v2\n" +
				"        datacenters:\n          user-service: dc2\n    gateway.routes:\n      - id: a\n        uri: lb://user-service\n",
			want: []string{"  user-service:\n    discovery:\n      type: consul\n      servers: ['http://consul.local:8500']\n      service: user-service\n" +
				"      tag: v2\n      datacenter: dc2\n      token: t0k\n"},
		},
		{
			name: "lb:// from Kubernetes",
			file: "spring:\n  cloud:\n    kubernetes.discovery:\n      namespaces: [shop]\n      primary-port-name: http\n" +
				"    gateway.routes:\n      - id: a\n        uri: lb://user-service\n",
			want: []string{"  user-service:\n    discovery:\n      type: kubernetes\n      service: user-service\n      namespace: shop\n      port: http\n"},
		},
		{
			name: "several registries",
			file: "spring.cloud.nacos.discovery.server-addr: n:8848\nspring.cloud.consul.host: c\n" +
				"spring.cloud.gateway.routes:\n  - id: a\n    uri: lb://user-service\n",
			want: []string{"type: nacos"},
			errors: []string{"FILE:2:1: spring.cloud.consul: not supported: several service registries (nacos (spring.cloud.nacos.discovery.server-addr), " +
				"consul (spring.cloud.consul)); Sluice follows one: disable the others (…enabled: false)"},
		},
		{
			name: "connect-timeout of a direct route",
			file: "spring.cloud.gateway.routes:\n  - id: a\n    uri: http://a:1\n    metadata: {connect-timeout: 200, response-timeout: 1500}\n",
			want: []string{"    response_timeout: 1.5s"},
			warnings: []string{`FILE:4:33: spring.cloud.gateway.routes[0].metadata.connect-timeout: ignored: Sluice sets connect_timeout per upstream; ` +
				`this route's uri has the default (or upstream_defaults, from httpclient.connect-timeout)`},
		},
		{
			name:     "an active profile's document",
			file:     "spring.application.name: x\n---\nspring.config.activate.on-profile: prod\nserver.port: 80\n",
			env:      map[string]string{"SPRING_PROFILES_ACTIVE": "dev,prod"},
			warnings: []string{`FILE:1:1: spring.application.name: ignored: not gateway configuration`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert("app.yml", []byte(tc.file), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			native := string(res.Marshal())
			for _, w := range tc.want {
				if !strings.Contains(native, w) {
					t.Errorf("native config lacks %q:\n%s", w, native)
				}
			}
			check := func(kind string, got config.Errors, want []string) {
				var lines []string
				for _, e := range got {
					lines = append(lines, strings.Replace(e.Error(), "app.yml:", "FILE:", 1))
				}
				if strings.Join(lines, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s:\n%s\nwant:\n%s", kind, strings.Join(lines, "\n"), strings.Join(want, "\n"))
				}
			}
			check("errors", res.Errors, tc.errors)
			check("warnings", res.Warnings, tc.warnings)
		})
	}
}

func TestConvertMalformed(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{name: "unclosed quote", file: "spring:\n  cloud:\n    gateway:\n      routes:\n        - id: a\n          uri: \"http://a\n",
			want: "app.yml:6:1: yaml: found unexpected end of stream"},
		{name: "unclosed list", file: "spring:\n  a: 1\n  b: [1, 2\nserver: 1\n", want: "app.yml:3:1: yaml: did not find expected ',' or ']'"},
		{name: "tab", file: "spring:\n\tcloud: {}\n", want: "app.yml:2:1: yaml: found character that cannot start any token"},
		{name: "not a mapping", file: "- spring\n", want: "app.yml:1:1: expected a mapping of Spring properties"},
		{name: "empty", file: "", want: "app.yml:1:1: expected a mapping of Spring properties"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert("app.yml", []byte(tc.file), noEnv)
			var es config.Errors
			if !errors.As(err, &es) || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// TestImport checks that problems found by the config package are reported
// at the Spring file's positions, with Spring property paths.
func TestImport(t *testing.T) {
	file := "server.port: 70000\n" +
		"spring.cloud.gateway:\n" +
		"  default-filters: [StripPrefix=1]\n" +
		"  routes:\n" +
		"    - id: a\n" +
		"      uri: http://a:1\n" +
		"      predicates: [Path=/a/**]\n" +
		"      order: 2\n" +
		"    - id: a\n" +
		"      uri: ftp://b:2\n" +
		"      metadata: {response-timeout: -1}\n"
	cfg, errs, _ := Import("app.yml", []byte(file), noEnv)
	want := []string{
		`app.yml:1:14: server.port: ":70000" is not a valid address: port "70000" is not a number from 0 to 65535`,
		`app.yml:9:11: spring.cloud.gateway.routes[1].id: duplicate route id "a" (first at line 5)`,
		`app.yml:10:12: spring.cloud.gateway.routes[1].uri: scheme "ftp" is not supported (use lb, http, https, ws or wss)`,
	}
	if errs.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", errs, strings.Join(want, "\n"))
	}
	if cfg == nil || len(cfg.Routes) != 2 {
		t.Fatalf("config %+v", cfg)
	}
	r := cfg.Routes[0]
	if r.Path != "spring.cloud.gateway.routes[0]" || r.Predicates[0].Path != "spring.cloud.gateway.routes[0].predicates[0]" ||
		r.Predicates[0].Pos != (config.Pos{Line: 7, Col: 20}) || r.Order != 2 {
		t.Errorf("route 0 path %q, predicate %q at %v, order %d", r.Path, r.Predicates[0].Path, r.Predicates[0].Pos, r.Order)
	}
	if d := cfg.DefaultFilters[0]; d.Path != "spring.cloud.gateway.default-filters[0]" || d.Pos != (config.Pos{Line: 3, Col: 21}) {
		t.Errorf("default filter at %q %v", d.Path, d.Pos)
	}
	if cfg.Routes[1].ResponseTimeout != 0 {
		t.Errorf("response-timeout -1 gave %s, want none", cfg.Routes[1].ResponseTimeout)
	}
}

func TestIsSpring(t *testing.T) {
	tests := []struct {
		name, file string
		want       bool
	}{
		{name: "spring block", file: "server: {port: 1}\nspring:\n  cloud: {}\n", want: true},
		{name: "dotted spring key", file: "spring.cloud.gateway.routes: []\n", want: true},
		{name: "native config", file: "server:\n  listen: 127.0.0.1:8080\nroutes: []\n"},
		{name: "spring inside another key", file: "routes:\n  spring: 1\n"},
		{name: "malformed", file: "spring: [\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsSpring([]byte(tc.file)); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name, in string
		unit     time.Duration
		want     time.Duration
		err      bool
	}{
		{name: "bare number in the default unit", in: "1500", unit: time.Millisecond, want: 1500 * time.Millisecond},
		{name: "bare number in seconds", in: "1800", unit: time.Second, want: 30 * time.Minute},
		{name: "simple form", in: "10s", unit: time.Millisecond, want: 10 * time.Second},
		{name: "days", in: "1d", unit: time.Millisecond, want: 24 * time.Hour},
		{name: "upper case unit", in: "5MS", unit: time.Millisecond, want: 5 * time.Millisecond},
		{name: "ISO-8601", in: "PT1M30S", unit: time.Millisecond, want: 90 * time.Second},
		{name: "ISO-8601 with days and fractions", in: "P1DT0.5S", unit: time.Millisecond, want: 24*time.Hour + 500*time.Millisecond},
		{name: "negative", in: "-1", unit: time.Millisecond, want: -time.Millisecond},
		{name: "words", in: "5 seconds", unit: time.Millisecond, err: true},
		{name: "empty ISO", in: "PT", unit: time.Millisecond, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDuration(tc.in, tc.unit)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %s, %v", got, err)
			}
		})
	}
}

func TestParseDataSize(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
	}{
		{name: "bytes", in: "8192", want: 8192},
		{name: "KB is 1024 in Spring", in: "16KB", want: 16 << 10},
		{name: "MB", in: "1MB", want: 1 << 20},
		{name: "not a size", in: "big", want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDataSize(tc.in)
			if err != nil {
				got = -1
			}
			if got != tc.want {
				t.Errorf("got %d", got)
			}
		})
	}
}

func TestUnusedInstances(t *testing.T) {
	file := "spring.cloud.discovery.client.simple.instances:\n  users: [{uri: 'http://a:1'}]\n  spare: [{uri: 'http://b:1'}]\n" +
		"spring.cloud.gateway.routes: [{id: a, uri: 'lb://users'}]\n"
	res, err := Convert("app.yml", []byte(file), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || res.Warnings.Error() != "app.yml:3:3: spring.cloud.discovery.client.simple.instances.spare: ignored: no route has uri lb://spare" {
		t.Errorf("errors %v, warnings %v", res.Errors, res.Warnings)
	}
}

// FuzzImport checks that no input makes the import panic, and that a file
// converted without problems yields a config or positioned errors.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Add([]byte("spring.cloud.gateway.routes: [{id: a, uri: '${X:${Y:http://a:1}}'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, errs, _ := Import("app.yml", data, noEnv)
		for _, e := range errs {
			if e.Line < 1 || e.Col < 1 {
				t.Fatalf("error without a position: %v", e)
			}
		}
		if len(errs) == 0 && cfg == nil {
			t.Fatal("no config and no errors")
		}
	})
}

// TestRouteCors checks that a route's metadata.cors becomes its first filter,
// and that the route's own filters keep their Spring paths.
func TestRouteCors(t *testing.T) {
	file := "spring.cloud.gateway.routes:\n" +
		"  - id: a\n" +
		"    uri: http://a:1\n" +
		"    filters: [StripPrefix=1, PrefixPath=/v1]\n" +
		"    metadata:\n" +
		"      cors: {allowed-origins: 'https://x.example', allowCredentials: true, max-age: 90, allowed-headrs: '*'}\n"
	cfg, errs, _ := Import("app.yml", []byte(file), noEnv)
	want := `app.yml:6:89: spring.cloud.gateway.routes[0].metadata.cors.allowed-headrs: not supported: Sluice has no equivalent of this Spring Cloud Gateway property`
	if errs.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", errs, want)
	}
	fs := cfg.Routes[0].Filters
	if len(fs) != 3 {
		t.Fatalf("filters %+v", fs)
	}
	for i, w := range []struct{ name, path, args string }{
		{"Cors", "spring.cloud.gateway.routes[0].metadata.cors", "map[allow_credentials:[true] allowed_origins:[https://x.example] max_age:[1m30s]]"},
		{"StripPrefix", "spring.cloud.gateway.routes[0].filters[0]", "map[]"},
		{"PrefixPath", "spring.cloud.gateway.routes[0].filters[1]", "map[]"},
	} {
		if got := fs[i]; got.Name != w.name || got.Path != w.path || fmt.Sprint(got.Named) != w.args {
			t.Errorf("filter %d: %s at %s with %v, want %s at %s with %s", i, got.Name, got.Path, got.Named, w.name, w.path, w.args)
		}
	}
}
