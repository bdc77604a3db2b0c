package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
)

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	backend := &Upstream{
		Name: "backend",
		Endpoints: []Endpoint{
			{Address: "127.0.0.1:9001", Weight: 1},
			{Address: "[::1]:9002", Weight: 2},
		},
		Protocol:       "h2c",
		Balancer:       "consistent_hash",
		HashOn:         HashKey{Source: "header", Name: "X-User-Id"},
		SlowStart:      10 * time.Second,
		ConnectTimeout: time.Second,
		Pool: Pool{
			MaxIdleTime:              8 * time.Second,
			MaxLifetime:              0,
			MaxConnections:           100,
			MaxRequestsPerConnection: 1000,
		},
		HealthCheck: &HealthCheck{
			Path:               "/healthz",
			Interval:           5 * time.Second,
			Timeout:            time.Second,
			HealthyThreshold:   1,
			UnhealthyThreshold: 2,
			ExpectedStatuses:   []StatusRange{{200, 200}, {300, 302}},
		},
		OutlierDetection: OutlierDetection{
			ConsecutiveFailures: 0,
			BaseEjectionTime:    10 * time.Second,
			MaxEjectionPercent:  30,
		},
		Pos:  Pos{27, 3},
		Path: "upstreams.backend",
	}
	secure := defaultUpstream("secure", Pos{50, 3}, "upstreams.secure", "api.internal:443")
	secure.TLS = &TLS{
		CAFile:             "testdata/ca.pem",
		CertFile:           "testdata/cert.pem",
		KeyFile:            "testdata/key.pem",
		ServerName:         "api.internal",
		InsecureSkipVerify: true,
	}
	direct := defaultUpstream("http://127.0.0.1:9003", Pos{80, 10}, "routes[2].uri", "127.0.0.1:9003")
	direct.Implicit = true
	socket := defaultUpstream("https://[::1]:443", Pos{83, 10}, "routes[3].uri", "[::1]:443")
	socket.Implicit = true
	socket.TLS = &TLS{}

	want := &Config{
		File: "testdata/full.yaml",
		Server: Server{
			Listen: "0.0.0.0:8443",
			TrustedProxies: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("fd00::/8"),
			},
			ResponseTimeout:   20 * time.Second,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       60 * time.Second,
			ReleaseIdleAfter:  time.Second,
			MaxHeaderBytes:    32 << 10,
			MaxBodySize:       10_000_000,
			UntrustedHeaders:  DefaultUntrustedHeaders,
			BodyTimeout:       60 * time.Second,
			BodyMinRate:       240,
			KeepAlive:         TCPKeepAlive{Enabled: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4},
			H2C:               true,
			Listeners: []Listener{
				{
					Name:              "public-tls",
					Listen:            "0.0.0.0:9443",
					ReadHeaderTimeout: 5 * time.Second,
					IdleTimeout:       120 * time.Second,
					ReleaseIdleAfter:  time.Second,
					MaxHeaderBytes:    32 << 10,
					BodyTimeout:       60 * time.Second,
					BodyMinRate:       240,
					MaxConnections:    5000,
					KeepAlive:         TCPKeepAlive{Enabled: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: 4},
					H2C:               true,
					TLS: &ServerTLS{
						Certificates: []CertPair{{CertFile: "testdata/cert.pem", KeyFile: "testdata/key.pem"}},
						MinVersion:   "1.3",
					},
					Pos:  Pos{10, 7},
					Path: "server.listeners[0]",
				},
				{
					Name:              "127.0.0.1:8081",
					Listen:            "127.0.0.1:8081",
					ReadHeaderTimeout: 2 * time.Second,
					IdleTimeout:       60 * time.Second,
					MaxHeaderBytes:    8 << 10,
					BodyTimeout:       60 * time.Second,
					BodyMinRate:       240,
					KeepAlive:         TCPKeepAlive{Enabled: false, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4},
					Pos:               Pos{16, 7},
					Path:              "server.listeners[1]",
				},
			},
		},
		Admin:       Admin{Listen: "127.0.0.1:9902"},
		Log:         Log{Level: "debug", Format: "text", AccessLog: false, AccessFields: AccessFieldNames, AccessSample2xx: 1},
		Drain:       Drain{Delay: 2 * time.Second, Timeout: 15 * time.Second},
		Tracing:     Tracing{SampleRatio: 1, ServiceName: "sluice", BatchTimeout: 5 * time.Second},
		Compression: Compression{MinSize: 2048},
		Reload:      Reload{Watch: true, Interval: time.Second},
		Upstreams: map[string]*Upstream{
			"backend":               backend,
			"secure":                secure,
			"http://127.0.0.1:9003": direct,
			"https://[::1]:443":     socket,
		},
		DefaultFilters: []Definition{
			{Spec: args.Spec{Name: "AddResponseHeader", Positional: []string{"X-Gateway", "sluice"}}, Pos: Pos{53, 19}, Path: "default_filters[0]"},
		},
		Routes: []*Route{
			{
				ID:       "api",
				URI:      "lb://backend",
				Upstream: "backend",
				Scheme:   "http",
				Order:    -1,
				Predicates: []Definition{
					{Spec: args.Spec{Name: "Path", Positional: []string{"/api/**"}}, Pos: Pos{59, 9}, Path: "routes[0].predicates[0]"},
					{Spec: args.Spec{Name: "Header", Positional: []string{"X-Id", `\d+`}}, Pos: Pos{60, 9}, Path: "routes[0].predicates[1]"},
					{Spec: args.Spec{Name: "Method", Named: map[string][]string{"methods": {"GET", "POST"}}}, Pos: Pos{61, 9}, Path: "routes[0].predicates[2]"},
				},
				Filters: []Definition{
					{Spec: args.Spec{Name: "StripPrefix", Positional: []string{"1"}}, Pos: Pos{64, 9}, Path: "routes[0].filters[0]"},
					{Spec: args.Spec{Name: "Retry", Named: map[string][]string{"retries": {"3"}, "backoff.firstBackoff": {"10ms"}}}, Pos: Pos{65, 9}, Path: "routes[0].filters[1]"},
				},
				Metadata:        map[string]any{"team": "core", "weight": 3},
				ResponseTimeout: 5 * time.Second,
				MaxBodySize:     1 << 20,
				Retry: Retry{
					Attempts:           2,
					PerTryTimeout:      time.Second,
					Backoff:            Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond},
					Statuses:           []int{502, 503},
					RetryNonIdempotent: true,
					BudgetPercent:      10,
					MinRetries:         1,
					BufferLimit:        64 << 10,
				},
				Pos:  Pos{55, 5},
				Path: "routes[0]",
			},
			defaultRoute("tls", "lb://secure", "secure", "https", Pos{77, 5}, "routes[1]", 20*time.Second, 10_000_000),
			defaultRoute("direct", "http://127.0.0.1:9003/", "http://127.0.0.1:9003", "http", Pos{79, 5}, "routes[2]", 20*time.Second, 10_000_000),
			defaultRoute("socket", "wss://[::1]", "https://[::1]:443", "https", Pos{82, 5}, "routes[3]", 20*time.Second, 10_000_000),
		},
	}
	want.Routes[2].Predicates = []Definition{
		{Spec: args.Spec{Name: "Host", Positional: []string{"example.com"}}, Pos: Pos{81, 18}, Path: "routes[2].predicates[0]"},
	}
	diff(t, c, want)
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
	}{
		{desc: "empty file", yaml: ""},
		{desc: "only a comment", yaml: "# nothing here\n"},
		{desc: "empty sections", yaml: "server:\nadmin:\nlog:\ndrain:\nupstreams:\nroutes:\n"},
		{desc: "empty mappings", yaml: "server: {}\nadmin: {}\nlog: {}\ndrain: {}\nupstreams: {}\nroutes: []\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := &Config{
				File: "sluice.yaml",
				Server: Server{
					Listen:            "127.0.0.1:8080",
					ResponseTimeout:   30 * time.Second,
					ReadHeaderTimeout: 10 * time.Second,
					IdleTimeout:       75 * time.Second,
					ReleaseIdleAfter:  time.Second,
					MaxHeaderBytes:    64 << 10,
					BodyTimeout:       60 * time.Second,
					BodyMinRate:       240,
					UntrustedHeaders:  DefaultUntrustedHeaders,
					KeepAlive:         TCPKeepAlive{Enabled: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4},
					H2C:               true,
				},
				Admin:       Admin{Listen: "127.0.0.1:9901"},
				Log:         Log{Level: "info", Format: "auto", AccessLog: true, AccessFields: AccessFieldNames, AccessSample2xx: 1},
				Drain:       Drain{Delay: 5 * time.Second, Timeout: 30 * time.Second},
				Tracing:     Tracing{SampleRatio: 1, ServiceName: "sluice", BatchTimeout: 5 * time.Second},
				Compression: Compression{MinSize: 2048},
				Reload:      Reload{Watch: true, Interval: time.Second},
			}
			// An empty mapping or list is not nil; that is no difference to consumers.
			c.Upstreams, c.Routes = nil, nil
			diff(t, c, want)
		})
	}
}

func TestParseRouteDefaults(t *testing.T) {
	const src = `
server: {response_timeout: 7s, max_body_size: 2KiB}
upstreams:
  b:
    endpoints: [b.internal:80]
    health_check: {path: /ready}
routes:
  - {id: r, uri: lb://b}
  - {id: zero, uri: lb://b, response_timeout: 0, max_body_size: 0}
`
	c, err := Parse("sluice.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	diff(t, c.Upstreams["b"], func() *Upstream {
		u := defaultUpstream("b", Pos{4, 3}, "upstreams.b", "b.internal:80")
		u.HealthCheck = &HealthCheck{
			Path:               "/ready",
			Interval:           10 * time.Second,
			Timeout:            2 * time.Second,
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
			ExpectedStatuses:   []StatusRange{{200, 399}},
		}
		return u
	}())
	diff(t, c.Routes, []*Route{
		defaultRoute("r", "lb://b", "b", "http", Pos{8, 5}, "routes[0]", 7*time.Second, 2048),
		defaultRoute("zero", "lb://b", "b", "http", Pos{9, 5}, "routes[1]", 0, 0),
	})
}

// parseValueTests are also FuzzParse's seeds.
var parseValueTests = []struct {
	desc string
	yaml string
	got  func(*Config) any
	want any
}{
	{
		desc: "admin off disables",
		yaml: "admin: {listen: off}",
		got:  func(c *Config) any { return c.Admin.Listen },
		want: "",
	},
	{
		desc: "admin empty disables",
		yaml: `admin: {listen: ""}`,
		got:  func(c *Config) any { return c.Admin.Listen },
		want: "",
	},
	{
		desc: "listen on all interfaces",
		yaml: `server: {listen: ":8080"}`,
		got:  func(c *Config) any { return c.Server.Listen },
		want: ":8080",
	},
	{
		desc: "size as an integer",
		yaml: "server: {max_header_bytes: 4096}",
		got:  func(c *Config) any { return c.Server.MaxHeaderBytes },
		want: int64(4096),
	},
	{
		desc: "size with a spaced lower-case unit",
		yaml: "server: {max_body_size: 3 mib}",
		got:  func(c *Config) any { return c.Server.MaxBodySize },
		want: int64(3 << 20),
	},
	{
		desc: "CIDR is masked",
		yaml: "server: {trusted_proxies: [10.1.2.3/8]}",
		got:  func(c *Config) any { return c.Server.TrustedProxies },
		want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	},
	{
		desc: "client_ip hash key",
		yaml: "upstreams: {b: {endpoints: [b:1], balancer: consistent_hash, hash_on: client_ip}}",
		got:  func(c *Config) any { return c.Upstreams["b"].HashOn },
		want: HashKey{Source: "client_ip"},
	},
	{
		desc: "shortcut without arguments",
		yaml: "default_filters: [PreserveHostHeader, 'X=', ' Y = a ,, b ']",
		got: func(c *Config) any {
			return []args.Spec{c.DefaultFilters[0].Spec, c.DefaultFilters[1].Spec, c.DefaultFilters[2].Spec}
		},
		want: []args.Spec{{Name: "PreserveHostHeader"}, {Name: "X"}, {Name: "Y", Positional: []string{"a", "", "b"}}},
	},
	{
		desc: "shortcut splits at the first =",
		yaml: "default_filters: ['SetHeader=X-Q, a=b']",
		got:  func(c *Config) any { return c.DefaultFilters[0].Positional },
		want: []string{"X-Q", "a=b"},
	},
	{
		desc: "expanded without args",
		yaml: "default_filters: [{name: DedupeResponseHeader}]",
		got:  func(c *Config) any { return c.DefaultFilters[0].Spec },
		want: args.Spec{Name: "DedupeResponseHeader"},
	},
	{
		desc: "two direct routes share one implicit upstream",
		yaml: "routes: [{id: a, uri: 'http://h'}, {id: b, uri: 'ws://h:80'}]",
		got:  func(c *Config) any { return []any{len(c.Upstreams), c.Routes[0].Upstream, c.Routes[1].Upstream} },
		want: []any{1, "http://h:80", "http://h:80"},
	},
	{
		desc: "anchors, aliases and merge keys",
		yaml: `
upstreams:
  a: &up {endpoints: [a:1], connect_timeout: 9s}
  b: {<<: *up, endpoints: [b:1]}
routes:
  - {id: a, uri: lb://a, retry: &retry {attempts: 5}}
  - {id: b, uri: lb://b, retry: *retry}
`,
		got: func(c *Config) any {
			return []any{c.Upstreams["b"].ConnectTimeout, c.Upstreams["b"].Endpoints[0].Address, c.Routes[1].Retry.Attempts}
		},
		want: []any{9 * time.Second, "b:1", 5},
	},
	{
		desc: "a listener takes what it does not set from the server",
		yaml: `server:
  listen: ":8080"
  idle_timeout: 30s
  release_idle_after: 3s
  max_connections: 100
  keepalive: {idle: 20s}
  h2c: false
  listeners:
    - {listen: ":8443", idle_timeout: 90s, keepalive: {count: 9}}
`,
		got: func(c *Config) any { return c.Server.Listeners },
		want: []Listener{{Name: ":8443", Listen: ":8443", ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
			ReleaseIdleAfter: 3 * time.Second, MaxHeaderBytes: 64 << 10, BodyTimeout: 60 * time.Second, BodyMinRate: 240, MaxConnections: 100,
			KeepAlive: TCPKeepAlive{Enabled: true, Idle: 20 * time.Second, Interval: 15 * time.Second, Count: 9},
			Pos:       Pos{9, 7}, Path: "server.listeners[0]"}},
	},
	{
		desc: "a listener takes server.tls unless it says tls: off",
		yaml: `server:
  tls: {certificates: [{cert_file: testdata/cert.pem, key_file: testdata/key.pem}]}
  listeners:
    - {name: plain, listen: ":80", tls: off}
    - {name: tls, listen: ":8444", tls: ~}
    - {name: own, listen: ":8445", tls: {certificates: [{cert_file: testdata/cert.pem, key_file: testdata/key.pem}], min_version: "1.3"}}
`,
		got: func(c *Config) any {
			l := c.Server.Listeners
			return []any{l[0].TLS == nil, l[1].TLS == c.Server.TLS, l[1].TLS.MinVersion, l[2].TLS.MinVersion}
		},
		want: []any{true, true, "1.2", "1.3"},
	},
	{
		desc: "server.tls off is no TLS",
		yaml: "server: {tls: off}",
		got:  func(c *Config) any { return c.Server.TLS },
		want: (*ServerTLS)(nil),
	},
	{
		desc: "listeners on port 0 do not conflict; every listener, primary first",
		yaml: `server: {listen: "127.0.0.1:0", listeners: [{name: a, listen: "127.0.0.1:0"}, {name: b, listen: ":0"}, {listen: "[::1]:0"}]}`,
		got: func(c *Config) any {
			var out []string
			for _, l := range c.Server.AllListeners() {
				out = append(out, l.Path+" "+l.Name+" "+l.Listen)
			}
			return out
		},
		want: []string{"server 127.0.0.1:0 127.0.0.1:0", "server.listeners[0] a 127.0.0.1:0", "server.listeners[1] b :0", "server.listeners[2] [::1]:0 [::1]:0"},
	},
	{
		desc: "null leaves the default",
		yaml: "server: {listen: ~, response_timeout: }\nroutes: [{id: a, uri: 'http://h', retry: ~}]",
		got: func(c *Config) any {
			return []any{c.Server.Listen, c.Server.ResponseTimeout, c.Routes[0].Retry.Attempts}
		},
		want: []any{"127.0.0.1:8080", 30 * time.Second, 3},
	},
}

func TestParseValues(t *testing.T) {
	for _, tc := range parseValueTests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			diff(t, tc.got(c), tc.want)
		})
	}
}

// parseErrorTests are also FuzzParse's seeds.
var parseErrorTests = []struct {
	desc string
	yaml string
	want []string
}{
	{
		desc: "typo in a key",
		yaml: `
sever: {listen: ":80"}
routes:
  - id: api
    uri: http://h
    predicates:
      - Path=/a
      - {name: Path, patern: /b}
`,
		want: []string{
			`sluice.yaml:2:1: unknown key "sever" (did you mean server?)`,
			`sluice.yaml:8:22: routes[0].predicates[1]: unknown key "patern"`,
		},
	},
	{
		desc: "unknown key without a suggestion",
		yaml: "log: {colour: true}",
		want: []string{`sluice.yaml:1:7: log: unknown key "colour"`},
	},
	{
		desc: "bad duration",
		yaml: `
upstreams:
  backend:
    endpoints: [127.0.0.1:1]
    pool: {max_idle_time: 4x}
`,
		want: []string{`sluice.yaml:5:27: upstreams.backend.pool.max_idle_time: "4x" is not a duration (like 500ms or 30s)`},
	},
	{
		desc: "duration without a unit or negative",
		yaml: "drain: {delay: 5, timeout: -1s}",
		want: []string{
			`sluice.yaml:1:16: drain.delay: "5" is not a duration (like 500ms or 30s)`,
			`sluice.yaml:1:28: drain.timeout: "-1s" must not be negative`,
		},
	},
	{
		desc: "bad size",
		yaml: "server:\n  max_body_size: 10 MegaBytes\n  max_header_bytes: -1\n",
		want: []string{
			`sluice.yaml:2:18: server.max_body_size: "10 MegaBytes" is not a size (like 65536, 64KiB or 10MB)`,
			`sluice.yaml:3:21: server.max_header_bytes: "-1" is not a size (like 65536, 64KiB or 10MB)`,
		},
	},
	{
		desc: "wrong types",
		yaml: `
server: [listen]
log: {access_log: yes, level: [info]}
upstreams:
  b:
    endpoints: 127.0.0.1:1
routes:
  - id: r
    uri: lb://b
    order: first
    retry: {attempts: 2.5, statuses: 503}
    metadata: [a]
`,
		want: []string{
			`sluice.yaml:2:9: server: expected a mapping, got a list`,
			`sluice.yaml:3:19: log.access_log: expected true or false, got the string "yes"`,
			`sluice.yaml:3:31: log.level: expected a string, got a list`,
			`sluice.yaml:6:16: upstreams.b.endpoints: expected a list, got the string "127.0.0.1:1"`,
			`sluice.yaml:10:12: routes[0].order: expected an integer, got the string "first"`,
			`sluice.yaml:11:23: routes[0].retry.attempts: expected an integer, got the number 2.5`,
			`sluice.yaml:11:38: routes[0].retry.statuses: expected a list, got the number 503`,
			`sluice.yaml:12:15: routes[0].metadata: expected a mapping, got a list`,
		},
	},
	{
		desc: "missing upstream",
		yaml: `
upstreams:
  backend: {endpoints: ["127.0.0.1:9001"]}
  other: {endpoints: ["127.0.0.1:9002"]}
routes:
  - id: api
    uri: lb://backnd
  - id: direct
    uri: http://127.0.0.1:9003
  - id: implicit-is-not-a-name
    uri: lb://http://127.0.0.1:9003
`,
		want: []string{
			`sluice.yaml:7:10: routes[0].uri: upstream "backnd" is not defined (defined: backend, other)`,
			`sluice.yaml:11:10: routes[2].uri: "lb://http://127.0.0.1:9003": a path is not allowed (use PrefixPath or SetPath)`,
		},
	},
	{
		desc: "no upstreams defined",
		yaml: "routes: [{id: a, uri: 'lb://b'}]",
		want: []string{`sluice.yaml:1:23: routes[0].uri: upstream "b" is not defined (defined: none)`},
	},
	{
		desc: "duplicate route id",
		yaml: `
routes:
  - id: api
    uri: http://h
  - id: web
    uri: http://h
  - id: api
    uri: http://h
`,
		want: []string{`sluice.yaml:7:9: routes[2].id: duplicate route id "api" (first at line 3)`},
	},
	{
		desc: "missing route id and uri",
		yaml: "routes:\n  - order: 1\n  - {id: '', uri: ''}\n  -\n",
		want: []string{
			`sluice.yaml:2:5: routes[0]: missing required key "id"`,
			`sluice.yaml:2:5: routes[0]: missing required key "uri"`,
			`sluice.yaml:3:10: routes[1].id: must not be empty`,
			`sluice.yaml:3:19: routes[1].uri: must not be empty`,
			`sluice.yaml:4:4: routes[2]: empty list item`,
		},
	},
	{
		desc: "malformed YAML",
		yaml: "server:\n  listen: [a\nlog: {}\n",
		want: []string{`sluice.yaml:2:1: yaml: did not find expected ',' or ']'`},
	},
	{
		desc: "mapping in a plain scalar",
		yaml: "log: level: info\n",
		want: []string{`sluice.yaml:1:1: yaml: mapping values are not allowed in this context`},
	},
	{
		desc: "bad indentation",
		yaml: "log:\n  - level\n level: info\n",
		want: []string{`sluice.yaml:3:1: yaml: did not find expected key`},
	},
	{
		desc: "tab indentation",
		yaml: "server:\n\tlisten: x\n",
		want: []string{`sluice.yaml:2:1: yaml: found character that cannot start any token`},
	},
	{
		desc: "unknown anchor",
		yaml: "server:\n  listen: *addr\n",
		want: []string{`sluice.yaml:2:11: yaml: unknown anchor 'addr' referenced`},
	},
	{
		desc: "two documents",
		yaml: "log: {}\n---\nlog: {}\n",
		want: []string{`sluice.yaml:2:1: yaml: a config file holds one document, found a second`},
	},
	{
		desc: "not a mapping at the top",
		yaml: "- server\n",
		want: []string{`sluice.yaml:1:1: expected a mapping, got a list`},
	},
	{
		desc: "duplicate key",
		yaml: "log:\n  level: info\n  level: debug\n",
		want: []string{`sluice.yaml:3:3: log: duplicate key "level" (first at line 2)`},
	},
	{
		desc: "bad CIDR",
		yaml: `server: {trusted_proxies: ["10.0.0.0/33", "10.0.0.300", "fe80::1%eth0", [a]]}`,
		want: []string{
			`sluice.yaml:1:28: server.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR prefix (like 10.0.0.0/8)`,
			`sluice.yaml:1:43: server.trusted_proxies[1]: "10.0.0.300" is not an IP address or CIDR prefix (like 10.0.0.0/8)`,
			`sluice.yaml:1:57: server.trusted_proxies[2]: "fe80::1%eth0" is not an IP address or CIDR prefix (like 10.0.0.0/8)`,
			`sluice.yaml:1:73: server.trusted_proxies[3]: expected a string, got a list`,
		},
	},
	{
		desc: "bad listen address",
		yaml: "server: {listen: 8080}\nadmin: {listen: 'localhost:http'}\n",
		want: []string{
			`sluice.yaml:1:18: server.listen: "8080" is not a valid address: missing port in address`,
			`sluice.yaml:2:17: admin.listen: "localhost:http" is not a valid address: port "http" is not a number from 0 to 65535 (or "off")`,
		},
	},
	{
		desc: "listeners",
		yaml: `server:
  listen: ":8080"
  listeners:
    - {listen: ":8443", idle_timeot: 1s}
    - {listen: ":8444", idle_timeout: soon, h2c: yes}
    - {name: x}
    - {listen: "127.0.0.1:8080"}
    - {listen: ":8443"}
    - {name: x, listen: ":9000"}
    - {listen: ":9001", trusted_proxies: [10.0.0.0/8], queue: {size: 1}}
    - {listen: ":9002", max_connections: -1, max_header_bytes: 0, keepalive: {idle: 0s}}
    - {listen: "9003", name: ""}
    - {name: ":8443", listen: ":9004"}
    - {listen: "[::]:9001"}
    -
    - [listen]
`,
		want: []string{
			`sluice.yaml:4:25: server.listeners[0]: unknown key "idle_timeot" (did you mean idle_timeout?)`,
			`sluice.yaml:5:39: server.listeners[1].idle_timeout: "soon" is not a duration (like 500ms or 30s)`,
			`sluice.yaml:5:50: server.listeners[1].h2c: expected true or false, got the string "yes"`,
			`sluice.yaml:6:7: server.listeners[2]: missing required key "listen"`,
			`sluice.yaml:7:16: server.listeners[3].listen: "127.0.0.1:8080" overlaps ":8080" of server.listen at line 2 (the same port, and one of them on all interfaces)`,
			`sluice.yaml:8:16: server.listeners[4].listen: ":8443" is already the address of server.listeners[0].listen at line 4`,
			`sluice.yaml:9:14: server.listeners[5].name: duplicate listener name "x" (also the name of server.listeners[2].name at line 6)`,
			`sluice.yaml:10:25: server.listeners[6]: "trusted_proxies" is set for the whole gateway, on server, not per listener`,
			`sluice.yaml:10:56: server.listeners[6]: "queue" is set for the whole gateway, on server, not per listener`,
			`sluice.yaml:11:42: server.listeners[7].max_connections: must be at least 0, got -1`,
			`sluice.yaml:11:64: server.listeners[7].max_header_bytes: must be greater than 0`,
			`sluice.yaml:11:85: server.listeners[7].keepalive.idle: must be greater than 0`,
			`sluice.yaml:12:16: server.listeners[8].listen: "9003" is not a valid address: missing port in address`,
			`sluice.yaml:12:30: server.listeners[8].name: must not be empty`,
			`sluice.yaml:13:14: server.listeners[9].name: duplicate listener name ":8443" (also the name of server.listeners[0].listen at line 4)`,
			`sluice.yaml:14:16: server.listeners[10].listen: "[::]:9001" overlaps ":9001" of server.listeners[6].listen at line 10 (the same port, and one of them on all interfaces)`,
			`sluice.yaml:15:6: server.listeners[11]: empty list item`,
			`sluice.yaml:16:7: server.listeners[12]: expected a mapping, got a list`,
		},
	},
	{
		desc: "listener names",
		yaml: `server:
  listen: "127.0.0.1:0"
  listeners:
    - {listen: "127.0.0.1:0"}
    - {name: "127.0.0.1:8080", listen: ":9000"}
`,
		want: []string{
			`sluice.yaml:4:7: server.listeners[0]: listener name "127.0.0.1:0", by default its listen address, is already the name of server.listen at line 2; set name`,
		},
	},
	{
		desc: "a listener named like the default server.listen",
		yaml: `server: {listeners: [{name: "127.0.0.1:8080", listen: ":9000"}, {listen: "localhost:8080"}, {listen: "127.0.0.1:8080"}]}`,
		want: []string{
			`sluice.yaml:1:29: server.listeners[0].name: duplicate listener name "127.0.0.1:8080" (also the name of the default server.listen)`,
			`sluice.yaml:1:102: server.listeners[2].listen: "127.0.0.1:8080" is already the address of the default server.listen`,
		},
	},
	{
		desc: "listeners not a list",
		yaml: `server: {listeners: {listen: ":1"}}`,
		want: []string{`sluice.yaml:1:21: server.listeners: expected a list, got a mapping`},
	},
	{
		desc: "listener TLS",
		yaml: `server:
  tls: {certificates: []}
  listeners:
    - listen: ":8443"
      tls: {certificates: [{cert_file: testdata/cert.pem}, {cert_file: testdata/nope.pem, key_file: testdata}], client_ca_file: testdata/missing.pem, min_version: "1.1"}
    - {listen: ":8444", tls: {}}
    - {listen: ":8445", tls: on}
    - {listen: ":8446"}
`,
		want: []string{
			`sluice.yaml:2:8: server.tls: at least one entry in certificates is required`,
			`sluice.yaml:5:28: server.listeners[0].tls.certificates[0]: cert_file and key_file are both required`,
			`sluice.yaml:5:72: server.listeners[0].tls.certificates[1].cert_file: file "testdata/nope.pem" does not exist`,
			`sluice.yaml:5:101: server.listeners[0].tls.certificates[1].key_file: "testdata" is a directory`,
			`sluice.yaml:5:129: server.listeners[0].tls.client_ca_file: file "testdata/missing.pem" does not exist`,
			`sluice.yaml:5:164: server.listeners[0].tls.min_version: "1.1" is not one of 1.2, 1.3 (did you mean 1.2?)`,
			`sluice.yaml:6:30: server.listeners[1].tls: at least one entry in certificates is required`,
			`sluice.yaml:7:30: server.listeners[2].tls: expected a mapping, got the string "on"`,
		},
	},
	{
		desc: "bad endpoint",
		yaml: `
upstreams:
  b:
    endpoints:
      - ::1:9001
      - {address: "h:0", weight: 0}
      - {weight: 2}
      - "bad host!:80"
      - "[::1]:9001"
      - :80
      - {address: "[::1]:9001"}
`,
		want: []string{
			`sluice.yaml:5:9: upstreams.b.endpoints[0]: "::1:9001" is not a valid address: too many colons in address`,
			`sluice.yaml:6:19: upstreams.b.endpoints[1].address: "h:0" is not a valid address: port "0" is not a number from 1 to 65535`,
			`sluice.yaml:6:34: upstreams.b.endpoints[1].weight: must be between 1 and 1000, got 0`,
			`sluice.yaml:7:9: upstreams.b.endpoints[2]: missing required key "address"`,
			`sluice.yaml:8:9: upstreams.b.endpoints[3]: "bad host!:80" is not a valid address: host "bad host!" is not an IP address or hostname`,
			`sluice.yaml:10:9: upstreams.b.endpoints[5]: ":80" is not a valid address: missing host`,
			`sluice.yaml:11:19: upstreams.b.endpoints[6].address: duplicate endpoint "[::1]:9001" (first at line 9)`,
		},
	},
	{
		desc: "bad upstream name and no endpoints",
		yaml: "upstreams:\n  'a b': {endpoints: []}\n",
		want: []string{
			`sluice.yaml:2:3: upstreams.a b: name "a b" may only hold letters, digits, '.', '_' and '-'`,
			`sluice.yaml:2:22: upstreams.a b.endpoints: at least one endpoint is required`,
		},
	},
	{
		desc: "uri with a path, query, fragment, user or unknown scheme",
		yaml: `
routes:
  - {id: a, uri: "http://h/api"}
  - {id: b, uri: "http://h/?q=1"}
  - {id: c, uri: "http://h#top"}
  - {id: d, uri: "https://u:p@h"}
  - {id: e, uri: "ftp://h"}
  - {id: f, uri: "lb://b/x"}
  - {id: g, uri: "/relative"}
  - {id: h, uri: "http://h:99999"}
`,
		want: []string{
			`sluice.yaml:3:18: routes[0].uri: "http://h/api": a path is not allowed (use PrefixPath or SetPath)`,
			`sluice.yaml:4:18: routes[1].uri: "http://h/?q=1": a query is not allowed`,
			`sluice.yaml:5:18: routes[2].uri: "http://h#top": a fragment is not allowed`,
			`sluice.yaml:6:18: routes[3].uri: "https://u:p@h": user info is not allowed`,
			`sluice.yaml:7:18: routes[4].uri: scheme "ftp" is not supported (use lb, http, https, ws or wss)`,
			`sluice.yaml:8:18: routes[5].uri: "lb://b/x": a path is not allowed (use PrefixPath or SetPath)`,
			`sluice.yaml:9:18: routes[6].uri: "/relative" is not a URI like lb://backend or http://127.0.0.1:9001`,
			`sluice.yaml:10:18: routes[7].uri: "http://h:99999": port "99999" is not a number from 1 to 65535`,
		},
	},
	{
		desc: "consistent_hash without hash_on",
		yaml: `
upstreams:
  a: {endpoints: [a:1], balancer: consistent_hash}
  b: {endpoints: [b:1], hash_on: client_ip}
  c: {endpoints: [c:1], balancer: consistent_hash, hash_on: "header:"}
  d: {endpoints: [d:1], balancer: roundrobin, protocol: http2}
`,
		want: []string{
			`sluice.yaml:3:35: upstreams.a.balancer: consistent_hash needs hash_on (header:NAME, cookie:NAME or client_ip)`,
			`sluice.yaml:4:34: upstreams.b.hash_on: is only used with balancer consistent_hash`,
			`sluice.yaml:5:35: upstreams.c.balancer: consistent_hash needs hash_on (header:NAME, cookie:NAME or client_ip)`,
			`sluice.yaml:5:61: upstreams.c.hash_on: "header:" is not header:NAME, cookie:NAME or client_ip`,
			`sluice.yaml:6:35: upstreams.d.balancer: "roundrobin" is not one of round_robin, least_request, random, consistent_hash (did you mean round_robin?)`,
			`sluice.yaml:6:57: upstreams.d.protocol: "http2" is not one of http1, h2, h2c (did you mean http1?)`,
		},
	},
	{
		desc: "upstream limits",
		yaml: `
upstreams:
  b:
    endpoints: [b:1]
    connect_timeout: 0s
    pool: {max_idle_time: 0, max_connections: -1}
    health_check: {interval: 1s, timeout: 1s, healthy_threshold: 0, expected_statuses: [600, "399-200"]}
    outlier_detection: {base_ejection_time: 0s, max_ejection_percent: 101}
`,
		want: []string{
			`sluice.yaml:5:22: upstreams.b.connect_timeout: must be greater than 0`,
			`sluice.yaml:6:27: upstreams.b.pool.max_idle_time: must be greater than 0`,
			`sluice.yaml:6:47: upstreams.b.pool.max_connections: must be at least 0, got -1`,
			`sluice.yaml:7:19: upstreams.b.health_check: missing required key "path"`,
			`sluice.yaml:7:43: upstreams.b.health_check.timeout: must be less than interval (1s)`,
			`sluice.yaml:7:66: upstreams.b.health_check.healthy_threshold: must be at least 1, got 0`,
			`sluice.yaml:7:89: upstreams.b.health_check.expected_statuses[0]: "600" is not a status code or range (like 200 or 200-399)`,
			`sluice.yaml:7:94: upstreams.b.health_check.expected_statuses[1]: "399-200" is not a status code or range (like 200 or 200-399)`,
			`sluice.yaml:8:45: upstreams.b.outlier_detection.base_ejection_time: must be greater than 0`,
			`sluice.yaml:8:71: upstreams.b.outlier_detection.max_ejection_percent: must be between 0 and 100, got 101`,
		},
	},
	{
		desc: "TLS files",
		yaml: `
upstreams:
  b:
    endpoints: [b:443]
    tls: {cert_file: testdata/cert.pem, ca_file: testdata/missing.pem}
  c:
    endpoints: [c:443]
    tls: {key_file: testdata}
`,
		want: []string{
			`sluice.yaml:5:10: upstreams.b.tls: cert_file and key_file must be set together`,
			`sluice.yaml:5:50: upstreams.b.tls.ca_file: file "testdata/missing.pem" does not exist`,
			`sluice.yaml:8:10: upstreams.c.tls: cert_file and key_file must be set together`,
			`sluice.yaml:8:21: upstreams.c.tls.key_file: "testdata" is a directory`,
		},
	},
	{
		desc: "health check path",
		yaml: "upstreams: {b: {endpoints: [b:1], health_check: {path: healthz}}, c: {endpoints: [c:1], health_check: {path: ''}}}",
		want: []string{
			`sluice.yaml:1:56: upstreams.b.health_check.path: "healthz" must start with /`,
			`sluice.yaml:1:110: upstreams.c.health_check.path: must not be empty`,
		},
	},
	{
		desc: "retry limits",
		yaml: `
routes:
  - id: r
    uri: http://h
    retry: {attempts: 11, backoff: {base: 1s}, statuses: [99], budget_percent: -1, min_retries: -1}
`,
		want: []string{
			`sluice.yaml:5:23: routes[0].retry.attempts: must be between 1 and 10, got 11`,
			`sluice.yaml:5:36: routes[0].retry.backoff: base (1s) must not exceed max (250ms)`,
			`sluice.yaml:5:59: routes[0].retry.statuses[0]: must be between 100 and 599, got 99`,
			`sluice.yaml:5:80: routes[0].retry.budget_percent: must be between 0 and 100, got -1`,
			`sluice.yaml:5:97: routes[0].retry.min_retries: must be at least 0, got -1`,
		},
	},
	{
		desc: "log level and format",
		yaml: "log: {level: infoo, format: yaml}",
		want: []string{
			`sluice.yaml:1:14: log.level: "infoo" is not one of debug, info, warn, error (did you mean info?)`,
			`sluice.yaml:1:29: log.format: "yaml" is not one of auto, json, text`,
		},
	},
	{
		desc: "bad predicates and filters",
		yaml: `
default_filters:
  - "=x"
  - "Add-Header=X, y"
  - [Path]
  - {args: {a: 1}}
  - {name: 1Path, args: [a]}
  - {name: Path, args: {a: {b: {c: 1}}, d: [[x]]}}
`,
		want: []string{
			`sluice.yaml:3:5: default_filters[0]: "=x": missing name`,
			`sluice.yaml:4:5: default_filters[1]: "Add-Header=X, y": name "Add-Header" must be letters and digits, starting with a letter`,
			`sluice.yaml:5:5: default_filters[2]: expected a string (Name=arg,...) or a mapping {name, args}, got a list`,
			`sluice.yaml:6:5: default_filters[3]: missing required key "name"`,
			`sluice.yaml:7:12: default_filters[4].name: name "1Path" must be letters and digits, starting with a letter`,
			`sluice.yaml:7:25: default_filters[4].args: expected a mapping, got a list`,
			`sluice.yaml:8:32: default_filters[5].args.a.b: nested mappings are supported one level deep`,
			`sluice.yaml:8:45: default_filters[5].args.d[0]: expected a string, got a list`,
		},
	},
	{
		desc: "several errors at once",
		yaml: `
server:
  listen: "127.0.0.1"
  idle_timeout: forever
upstreams:
  backend:
    endpoints: ["127.0.0.1:9001"]
    balancer: consistent_hash
routes:
  - id: api
    uri: lb://backnd
    predicates: ["Path=/api/**", {name: Method, arg: {methods: GET}}]
  - id: api
    uri: http://h/x
`,
		want: []string{
			`sluice.yaml:3:11: server.listen: "127.0.0.1" is not a valid address: missing port in address`,
			`sluice.yaml:4:17: server.idle_timeout: "forever" is not a duration (like 500ms or 30s)`,
			`sluice.yaml:8:15: upstreams.backend.balancer: consistent_hash needs hash_on (header:NAME, cookie:NAME or client_ip)`,
			`sluice.yaml:11:10: routes[0].uri: upstream "backnd" is not defined (defined: backend)`,
			`sluice.yaml:12:49: routes[0].predicates[1]: unknown key "arg" (did you mean args?)`,
			`sluice.yaml:13:9: routes[1].id: duplicate route id "api" (first at line 10)`,
			`sluice.yaml:14:10: routes[1].uri: "http://h/x": a path is not allowed (use PrefixPath or SetPath)`,
		},
	},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range parseErrorTests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; want\n%s", strings.Join(tc.want, "\n"))
			}
			if c != nil {
				t.Errorf("got a Config with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	c, err := Parse("sluice.yaml", []byte("routes:\n  - id: a\n    uri: http://h\n    predicates: [Paht=/x]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Routes[0].Predicates[0]
	got := c.Errorf(p.Pos, p.Path, "unknown predicate %q (did you mean %s?)", p.Name, "Path").Error()
	want := `sluice.yaml:4:18: routes[0].predicates[0]: unknown predicate "Paht" (did you mean Path?)`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("got %v, want a no such file error", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // -1: error
	}{
		{"0", 0},
		{"65536", 65536},
		{"64KiB", 64 << 10},
		{"64 KiB", 64 << 10},
		{"10MiB", 10 << 20},
		{"1MB", 1_000_000},
		{"2gb", 2_000_000_000},
		{"1TiB", 1 << 40},
		{"7B", 7},
		{"", -1},
		{"KiB", -1},
		{"1.5MiB", -1},
		{"-1", -1},
		{"10 MegaBytes", -1},
		{"9223372036854775807", 1<<63 - 1},
		{"9223372036854775807KiB", -1},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := args.ParseSizeSI(tc.in)
			if err != nil {
				got = -1
			}
			if got != tc.want {
				t.Errorf("args.ParseSizeSI(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func defaultUpstream(name string, p Pos, path, addr string) *Upstream {
	u := &Upstream{Name: name, Endpoints: []Endpoint{{Address: addr, Weight: 1}}, Pos: p, Path: path}
	u.setDefaults()
	return u
}

func defaultRoute(id, uri, upstream, scheme string, p Pos, path string, timeout time.Duration, maxBody int64) *Route {
	r := &Route{ID: id, URI: uri, Upstream: upstream, Scheme: scheme, ResponseTimeout: timeout, MaxBodySize: maxBody, Pos: p, Path: path}
	r.setDefaults()
	return r
}

func diff(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%#v\nwant\n%#v", got, want)
	}
}
