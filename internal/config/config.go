// Package config reads Sluice's YAML configuration into a typed, validated
// Config. It is config syntax only: it knows no behaviour, and the data-path
// packages never import it. A composition root maps a Config to their options.
//
// Every problem in a file is reported, not just the first, each as
//
//	FILE:LINE:COL: path.to.field: message
//
// Positions are kept on every Route, Upstream and Definition, so that a
// problem found later (an unknown filter name, a bad argument) can be reported
// the same way with Config.Errorf.
//
// docs/config.md is the reference for every field.
package config

import (
	"net/netip"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/args"
)

// Config is a parsed, validated configuration with every default filled in.
// It is immutable: nothing may modify it after Parse returns, and it is safe
// for concurrent readers. A reload parses a new Config.
type Config struct {
	// File is the file name given to Parse, used in error messages.
	File string `yaml:"-"`
	// Warnings are what is allowed but probably unwanted, like an admin
	// port open beyond loopback without a token; set by Parse.
	Warnings Errors `yaml:"-"`

	Server Server `yaml:"server"`
	Admin  Admin  `yaml:"admin"`
	Log    Log    `yaml:"log"`
	Drain  Drain  `yaml:"drain"`
	// Tracing configures the OpenTelemetry exporter (W3C trace context is
	// propagated whether or not it is enabled).
	Tracing Tracing `yaml:"tracing"`
	// Redis is the connection shared by Redis-backed filters; nil when absent.
	Redis  *Redis `yaml:"redis"`
	Reload Reload `yaml:"reload"`

	// Upstreams holds the named upstreams and, marked Implicit, one upstream
	// for each distinct direct route URI (http://, https://, ws://, wss://),
	// keyed by its synthetic name. Route.Upstream is always a key of it.
	Upstreams map[string]*Upstream `yaml:"upstreams"`

	// UpstreamDefaults holds the connection settings that every upstream,
	// implicit ones included, takes when it does not set them itself.
	UpstreamDefaults UpstreamDefaults `yaml:"upstream_defaults"`

	// DefaultFilters run on every route, before the route's own filters.
	DefaultFilters []Definition `yaml:"default_filters"`

	// Routes are in file order; Route.Order is not applied here.
	Routes []*Route `yaml:"routes"`

	// CORS maps path patterns to CORS policies for every route (Spring's
	// globalcors); the first pattern in file order that matches applies.
	CORS map[string]*CORSPolicy `yaml:"cors"`
	// Compression gzips the responses of every route when enabled.
	Compression Compression `yaml:"compression"`

	// ServiceList, set by the Spring import when the discovery locator is
	// on, is the registry whose services each get a route (the service
	// name is not used). The routes are in Routes: the gateway re-imports
	// the file whenever the list changes. Not a native config key.
	ServiceList *Discovery `yaml:"-"`
}

// Server configures the downstream (proxy) listener and the settings of the
// whole gateway. Listen and the connection settings (ReadHeaderTimeout,
// IdleTimeout, MaxHeaderBytes, MaxConnections, KeepAlive, H2C, TLS) are the
// primary listener's; Listeners are more listeners beside it.
type Server struct {
	Listen string `yaml:"listen"` // host:port
	// TrustedProxies are the peers whose X-Forwarded-* and Forwarded headers
	// are believed. A single IP is stored as a full-length prefix.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// HostIncludePort makes Host predicates match the request's Host header
	// with its port, as Spring Cloud Gateway does (its include-port); by
	// default the port is ignored on both sides.
	HostIncludePort bool `yaml:"host_include_port"`
	// ForwardedPrefix sends X-Forwarded-Prefix: the start of the request
	// path that a route's filters removed (Spring Cloud Gateway's default).
	ForwardedPrefix bool `yaml:"forwarded_prefix"`
	// UntrustedHeaders are request headers removed unless the peer is one
	// of TrustedProxies: forged client addresses and original paths.
	UntrustedHeaders  []string      `yaml:"untrusted_headers"`
	ResponseTimeout   time.Duration `yaml:"response_timeout"` // default for routes; 0 = none
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ReleaseIdleAfter: a plain-text HTTP/1.1 keep-alive connection idle
	// this long gives its goroutine and buffers back until the client
	// sends again (about 15 KiB less per idle connection). 0 = never.
	ReleaseIdleAfter time.Duration `yaml:"release_idle_after"`
	MaxHeaderBytes   int64         `yaml:"max_header_bytes,size"`
	MaxBodySize      int64         `yaml:"max_body_size,size"` // default for routes; 0 = unlimited
	// BodyTimeout is the longest wait for the next bytes of a request body
	// (nginx's client_body_timeout); 0 = none. BodyMinRate is the slowest
	// average rate of a body, bytes per second, after its first 5 seconds;
	// 0 = none. A body breaking either is answered 408. Routes may override both.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	BodyMinRate int64         `yaml:"body_min_rate,size"`
	// MaxConnections caps open client connections; more are refused at once. 0 = no cap.
	MaxConnections int `yaml:"max_connections"`
	// KeepAlive is the TCP keepalive of accepted sockets.
	KeepAlive TCPKeepAlive `yaml:"keepalive"`
	// H2C serves cleartext HTTP/2 with prior knowledge (gRPC clients) beside HTTP/1.1.
	H2C bool `yaml:"h2c"`
	// TLS, when set, terminates TLS on the listener (HTTP/2 by ALPN).
	TLS *ServerTLS `yaml:"tls"`
	// MaxConcurrentRequests caps requests being served by the whole
	// gateway; more wait in the queue or get a fast 503. 0 = no cap.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// Queue is the wait queue of the global limit.
	Queue Queue `yaml:"queue"`
	// Listeners are more proxy listeners, serving the same routes. After
	// Parse, each holds its own values: a field it does not set is the
	// server's.
	Listeners []Listener `yaml:"listeners"`
}

// Listener is one proxy listener: an address and its connection settings.
type Listener struct {
	// Name labels the listener's metrics; after Parse it is never empty
	// (by default, Listen as written).
	Name              string        `yaml:"name"`
	Listen            string        `yaml:"listen"` // host:port; required
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ReleaseIdleAfter  time.Duration `yaml:"release_idle_after"`
	MaxHeaderBytes    int64         `yaml:"max_header_bytes,size"`
	BodyTimeout       time.Duration `yaml:"body_timeout"`
	BodyMinRate       int64         `yaml:"body_min_rate,size"`
	MaxConnections    int           `yaml:"max_connections"` // 0 = no cap
	KeepAlive         TCPKeepAlive  `yaml:"keepalive"`
	H2C               bool          `yaml:"h2c"`
	// TLS is nil for a plain listener ("off" in the file, or no tls here
	// nor on the server).
	TLS *ServerTLS `yaml:"tls"`

	Pos  Pos    `yaml:"-"` // of the list item; zero for the primary
	Path string `yaml:"-"` // "server.listeners[N]"; "server" for the primary
}

// Primary returns the listener that Listen and the server's connection
// settings describe, named by its address as written.
func (s *Server) Primary() Listener {
	return Listener{
		Name: s.Listen, Listen: s.Listen, ReadHeaderTimeout: s.ReadHeaderTimeout, IdleTimeout: s.IdleTimeout,
		ReleaseIdleAfter: s.ReleaseIdleAfter,
		MaxHeaderBytes:   s.MaxHeaderBytes, BodyTimeout: s.BodyTimeout, BodyMinRate: s.BodyMinRate,
		MaxConnections: s.MaxConnections, KeepAlive: s.KeepAlive, H2C: s.H2C,
		TLS: s.TLS, Path: "server",
	}
}

// AllListeners returns every proxy listener: the primary first, then Listeners in file order.
func (s *Server) AllListeners() []Listener {
	return append([]Listener{s.Primary()}, s.Listeners...)
}

// Queue is a bounded wait queue in front of a concurrency limit.
type Queue struct {
	Size    int           `yaml:"size"`    // requests that may wait; 0 = none wait
	Timeout time.Duration `yaml:"timeout"` // longest wait before a 503
}

// AdaptiveConcurrency configures a gradient concurrency limit that follows
// the upstream's latency.
type AdaptiveConcurrency struct {
	MinLimit     int           `yaml:"min_limit"`
	MaxLimit     int           `yaml:"max_limit"`
	InitialLimit int           `yaml:"initial_limit"`
	Tolerance    float64       `yaml:"tolerance"` // latency over baseline tolerated before shrinking
	Window       time.Duration `yaml:"window"`    // how often the limit is recomputed
	// BaselineHalfLife is how fast the baseline latency follows a latency
	// that stays higher: what keeps the limit from sticking at its floor.
	BaselineHalfLife time.Duration `yaml:"baseline_half_life"`
}

func (a *AdaptiveConcurrency) setDefaults() {
	*a = AdaptiveConcurrency{MinLimit: 5, MaxLimit: 1000, InitialLimit: 20, Tolerance: 2,
		Window: 100 * time.Millisecond, BaselineHalfLife: 30 * time.Second}
}

// Tracing configures span export over OTLP/HTTP.
type Tracing struct {
	Enabled     bool    `yaml:"enabled"`
	Endpoint    string  `yaml:"endpoint"`     // OTLP/HTTP traces URL, like http://127.0.0.1:4318/v1/traces
	SampleRatio float64 `yaml:"sample_ratio"` // of new traces; a sampled parent is always followed
	ServiceName string  `yaml:"service_name"`
	// BatchTimeout is the longest a finished span waits before it is sent.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
}

// TCPKeepAlive configures TCP keepalive probes on accepted sockets.
type TCPKeepAlive struct {
	Enabled  bool          `yaml:"enabled"`
	Idle     time.Duration `yaml:"idle"`     // idle time before the first probe
	Interval time.Duration `yaml:"interval"` // between probes
	Count    int           `yaml:"count"`    // unanswered probes before the connection is dropped
}

// ServerTLS configures TLS termination. Certificates are chosen by SNI and
// reloaded when their files change.
type ServerTLS struct {
	Certificates []CertPair `yaml:"certificates"`
	// ClientCAFile, when set, requires clients to present a certificate signed by it.
	ClientCAFile string `yaml:"client_ca_file"`
	MinVersion   string `yaml:"min_version"` // "1.2" or "1.3"

	// off is "tls: off" in the file, made nil by the validator.
	off bool
}

// CertPair is one certificate and its key (PEM files).
type CertPair struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Admin configures the admin listener.
type Admin struct {
	Listen string `yaml:"listen"` // host:port, or "" when disabled ("off" in the file)
	// ReadySaturationThreshold, when > 0, turns readiness 503 while the
	// gateway's saturation (sluice_saturation) is at or above it. Liveness never does.
	ReadySaturationThreshold float64 `yaml:"ready_saturation_threshold"`
	// TokenFile or TokenEnv, at most one, hold a bearer token that every
	// admin endpoint but the health checks then requires.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// AllowedHosts are the names, besides IP addresses and localhost, that
	// requests to the admin port may carry in Host (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// HasToken reports whether the admin port requires a bearer token.
func (a *Admin) HasToken() bool { return a.TokenFile != "" || a.TokenEnv != "" }

// Log configures logging.
type Log struct {
	Level     string `yaml:"level"`  // debug, info, warn or error
	Format    string `yaml:"format"` // auto (text on a terminal, else json), json or text
	AccessLog bool   `yaml:"access_log"`
	// AccessFields are the fields of an access-log line, in order.
	AccessFields []string `yaml:"access_fields"`
	// AccessSample2xx is the fraction of 2xx responses logged (0..1);
	// every other status is always logged.
	AccessSample2xx float64 `yaml:"access_sample_2xx"`
}

// AccessFieldNames are the fields an access-log line can carry, in the default order.
var AccessFieldNames = []string{"method", "path", "route", "upstream", "endpoint", "status", "reason", "attempts",
	"duration", "bytes_in", "bytes_out", "client", "protocol", "request_id", "trace_id", "span_id", "host", "user_agent"}

// Drain configures graceful shutdown: after readiness turns 503 the server
// keeps serving for Delay, then waits at most Timeout for in-flight requests.
type Drain struct {
	Delay   time.Duration `yaml:"delay"`
	Timeout time.Duration `yaml:"timeout"`
}

// Upstream is a set of endpoints and how to reach them.
type Upstream struct {
	Name      string     `yaml:"-"`
	Endpoints []Endpoint `yaml:"endpoints"`
	// Discovery, when set, finds the endpoints instead (exactly one of the two).
	Discovery *Discovery `yaml:"discovery"`
	Protocol  string     `yaml:"protocol"` // http1, h2 or h2c
	Balancer  string     `yaml:"balancer"` // round_robin, least_request, random or consistent_hash
	// HashOn is set exactly when Balancer is consistent_hash.
	HashOn           HashKey          `yaml:"hash_on"`
	SlowStart        time.Duration    `yaml:"slow_start"`
	ConnectTimeout   time.Duration    `yaml:"connect_timeout"`
	Pool             Pool             `yaml:"pool"`
	TLS              *TLS             `yaml:"tls"`          // nil: plain text
	HealthCheck      *HealthCheck     `yaml:"health_check"` // nil: no active checks
	OutlierDetection OutlierDetection `yaml:"outlier_detection"`

	// Implicit marks an upstream synthesized from a direct route URI.
	Implicit bool `yaml:"-"`

	Pos  Pos    `yaml:"-"` // of the name in the file, or of the route URI if Implicit
	Path string `yaml:"-"` // "upstreams.NAME", or "routes[N].uri" if Implicit
}

// UpstreamDefaults are settings shared by every upstream. Only the fields
// written in the file apply; after Parse, each Upstream holds its own values.
type UpstreamDefaults struct {
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	Pool           Pool          `yaml:"pool"`
}

// Endpoint is one backend address.
type Endpoint struct {
	Address string `yaml:"address"` // host:port; IPv6 as [::1]:9001
	Weight  int    `yaml:"weight"`  // 1..1000
}

// HashKey is what consistent_hash hashes on.
type HashKey struct {
	Source string // "header", "cookie" or "client_ip"; "" when unset
	Name   string // header or cookie name; "" for client_ip
}

// String returns k as written in the file, e.g. "header:X-User-Id".
func (k HashKey) String() string {
	if k.Name == "" {
		return k.Source
	}
	return k.Source + ":" + k.Name
}

// Pool configures the connection pool to each endpoint.
type Pool struct {
	MaxIdleTime              time.Duration `yaml:"max_idle_time"`
	MaxLifetime              time.Duration `yaml:"max_lifetime"`    // 0 = unlimited
	MaxConnections           int           `yaml:"max_connections"` // per endpoint; 0 = unlimited
	MaxRequestsPerConnection int           `yaml:"max_requests_per_connection"`
}

// TLS configures TLS to an upstream. File names are used as written, relative
// to the working directory; Parse checks that the files exist.
type TLS struct {
	CAFile             string `yaml:"ca_file"` // "" = system roots
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"` // "" = the endpoint host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	Path               string        `yaml:"path"`
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"` // < Interval
	HealthyThreshold   int           `yaml:"healthy_threshold"`
	UnhealthyThreshold int           `yaml:"unhealthy_threshold"`
	ExpectedStatuses   []StatusRange `yaml:"expected_statuses"`
}

// StatusRange is an inclusive range of HTTP status codes; a single code has Min == Max.
type StatusRange struct {
	Min, Max int
}

// Contains reports whether code is in r.
func (r StatusRange) Contains(code int) bool { return r.Min <= code && code <= r.Max }

// OutlierDetection configures passive ejection of failing endpoints.
type OutlierDetection struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"` // 0 disables
	BaseEjectionTime    time.Duration `yaml:"base_ejection_time"`
	MaxEjectionPercent  int           `yaml:"max_ejection_percent"` // 0..100
}

// Route sends matching requests to an upstream.
type Route struct {
	ID  string `yaml:"id"`
	URI string `yaml:"uri"` // as written
	// Upstream is the key in Config.Upstreams: the name in lb://NAME, or the
	// synthetic name of a direct URI, like "http://127.0.0.1:9001".
	Upstream string `yaml:"-"`
	// Scheme is "https" when the upstream uses TLS, else "http" (also for ws and wss).
	Scheme     string         `yaml:"-"`
	Order      int            `yaml:"order"`
	Predicates []Definition   `yaml:"predicates"` // none: matches every request
	Filters    []Definition   `yaml:"filters"`
	Metadata   map[string]any `yaml:"metadata"`
	// ResponseTimeout and MaxBodySize default to the server's.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	MaxBodySize     int64         `yaml:"max_body_size,size"`
	// BodyTimeout and BodyMinRate, when set, replace the listener's.
	BodyTimeout *time.Duration `yaml:"body_timeout"`
	BodyMinRate *int64         `yaml:"body_min_rate,size"`
	Retry       Retry          `yaml:"retry"`
	// MaxConcurrentRequests caps the route's requests in flight (the
	// adaptive limit's ceiling when both are set). 0 = no cap.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// AdaptiveConcurrency, when set, limits the route's requests in flight
	// to what its upstream's latency shows it can take.
	AdaptiveConcurrency *AdaptiveConcurrency `yaml:"adaptive_concurrency"`
	// Queue is the wait queue of the route's limit.
	Queue Queue `yaml:"queue"`

	Pos  Pos    `yaml:"-"` // of the list item
	Path string `yaml:"-"` // "routes[N]"
}

// Retry configures retries of a route.
type Retry struct {
	Attempts           int           `yaml:"attempts"` // total tries including the first, 1..10
	PerTryTimeout      time.Duration `yaml:"per_try_timeout"`
	Backoff            Backoff       `yaml:"backoff"`
	Statuses           []int         `yaml:"statuses"` // retried only for idempotent requests
	RetryNonIdempotent bool          `yaml:"retry_non_idempotent"`
	// IdempotencyKey treats a request carrying an Idempotency-Key header as
	// idempotent, whatever its method: for backends that deduplicate by it.
	// Off by default: any client can send the header.
	IdempotencyKey bool `yaml:"idempotency_key"`
	BudgetPercent  int  `yaml:"budget_percent"` // 0..100
	MinRetries     int  `yaml:"min_retries"`    // retries in flight always allowed, regardless of budget
	// BufferLimit is the largest request body kept in memory so it can be
	// replayed; larger bodies are streamed and not retried once sent.
	BufferLimit int64 `yaml:"buffer_limit,size"`
}

// Backoff is an exponential backoff between retries, from Base up to Max.
type Backoff struct {
	Base time.Duration `yaml:"base"`
	Max  time.Duration `yaml:"max"`
}

// A Definition is one predicate or filter as written in the file, in either
// spelling: "Name=a,b" or {name: Name, args: {...}}. Neither the name nor
// the arguments are checked here; the composition root looks the name up and
// reports problems with Config.Errorf(d.Pos, d.Path, ...).
type Definition struct {
	args.Spec
	Pos  Pos    // of the list item
	Path string // like "routes[0].predicates[1]"
}

// DefaultUntrustedHeaders is server.untrusted_headers unless the file sets it.
var DefaultUntrustedHeaders = []string{"X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP",
	"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Original-URL", "X-Rewrite-URL"}

// Pos is a position in the file; Line and Col start at 1.
type Pos struct {
	Line, Col int
}

// Load reads and parses the file at path. If the file cannot be read, the
// error is the one from os.ReadFile; otherwise it is Errors.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates data. file is used only in error messages. On
// failure the error is Errors, holding every problem found, sorted by position.
func Parse(file string, data []byte) (*Config, error) {
	d := newDecoder(file)
	c := d.parse(data)
	if len(d.errs) > 0 {
		d.errs.sort()
		// An anchored value used twice may be reported twice.
		return nil, slices.CompactFunc(d.errs, func(a, b *Error) bool { return *a == *b })
	}
	return c, nil
}

// ParseAll is Parse for tools that report every problem at once (sluice
// validate): besides the errors, it returns the config as far as it could be
// decoded, so that later checks (predicate and filter names) can still run.
// The config must not be used to run anything when errs is not empty.
func ParseAll(file string, data []byte) (*Config, Errors) {
	d := newDecoder(file)
	c := d.parse(data)
	d.errs.sort()
	return c, slices.CompactFunc(d.errs, func(a, b *Error) bool { return *a == *b })
}

// ParseNode is ParseAll for a document already read into a YAML node (a
// mapping), as a converter from another format builds it: positions in the
// errors and in the Config are the nodes' Line and Column.
func ParseNode(file string, root *yaml.Node) (*Config, Errors) {
	d := newDecoder(file)
	c := defaultConfig()
	c.File = file
	if root != nil && !d.tooManyNodes(root) {
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	d.validate(c)
	d.errs.sort()
	return c, slices.CompactFunc(d.errs, func(a, b *Error) bool { return *a == *b })
}

// Errorf returns an error at pos in c's file, formatted like Parse's errors.
// path names the field, like Definition.Path; it may be empty.
func (c *Config) Errorf(pos Pos, path, format string, a ...any) *Error {
	return newError(c.File, pos, path, format, a...)
}

func defaultConfig() *Config {
	return &Config{
		Server: Server{
			Listen:            "127.0.0.1:8080",
			UntrustedHeaders:  slices.Clone(DefaultUntrustedHeaders),
			ResponseTimeout:   30 * time.Second,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       75 * time.Second,
			ReleaseIdleAfter:  time.Second,
			MaxHeaderBytes:    64 << 10,
			BodyTimeout:       60 * time.Second,
			BodyMinRate:       240,
			KeepAlive:         TCPKeepAlive{Enabled: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4},
			H2C:               true,
		},
		Admin: Admin{Listen: "127.0.0.1:9901"},
		Log: Log{Level: "info", Format: "auto", AccessLog: true, AccessSample2xx: 1,
			AccessFields: slices.Clone(AccessFieldNames)},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "sluice", BatchTimeout: 5 * time.Second},
		Drain:   Drain{Delay: 5 * time.Second, Timeout: 30 * time.Second},
		// Spring Boot's server.compression.min-response-size.
		Compression: Compression{MinSize: 2048},
		Reload:      Reload{Watch: true, Interval: time.Second},
	}
}

func (u *Upstream) setDefaults() {
	u.Protocol = "http1"
	u.Balancer = "round_robin"
	u.ConnectTimeout = 3 * time.Second
	u.Pool = Pool{MaxIdleTime: 4 * time.Second, MaxLifetime: 60 * time.Second}
	u.OutlierDetection = OutlierDetection{
		ConsecutiveFailures: 5,
		BaseEjectionTime:    30 * time.Second,
		MaxEjectionPercent:  50,
	}
}

func (e *Endpoint) setDefaults() { e.Weight = 1 }

func (h *HealthCheck) setDefaults() {
	h.Interval = 10 * time.Second
	h.Timeout = 2 * time.Second
	h.HealthyThreshold = 2
	h.UnhealthyThreshold = 3
	h.ExpectedStatuses = []StatusRange{{200, 399}}
}

// setDefaults leaves ResponseTimeout and MaxBodySize to the validator, which
// copies the server's when the route does not set them.
func (r *Route) setDefaults() {
	r.Retry = Retry{
		Attempts:      3,
		Backoff:       Backoff{Base: 25 * time.Millisecond, Max: 250 * time.Millisecond},
		BudgetPercent: 20,
		MinRetries:    3,
		BufferLimit:   64 << 10,
	}
}

func (u *Upstream) setLoc(p Pos, path string)   { u.Pos, u.Path = p, path }
func (r *Route) setLoc(p Pos, path string)      { r.Pos, r.Path = p, path }
func (d *Definition) setLoc(p Pos, path string) { d.Pos, d.Path = p, path }
func (l *Listener) setLoc(p Pos, path string)   { l.Pos, l.Path = p, path }
