package scg

import (
	"strings"
	"testing"
	"time"
)

// TestSpringAccepts holds files that Spring Cloud Gateway accepts and the
// import once rejected: each must now import without errors.
func TestSpringAccepts(t *testing.T) {
	const route = "spring.cloud.gateway.routes:\n  - id: a\n    uri: http://127.0.0.1:9001\n    predicates: [Path=/a/**]\n"
	tests := []struct {
		desc, file string
		warning    string // a warning that must be listed; "" = none checked
	}{
		{desc: "an empty value is an empty string", file: route + "spring.data.redis:\n  host: localhost\n  password:\n"},
		{desc: "locator settings while the locator is off", file: route +
			"spring.cloud.gateway.discovery.locator:\n  lower-case-service-id: true\n  url-expression: \"'lb://'+serviceId\"\n",
			warning: "discovery.locator.lower-case-service-id: ignored: discovery routes are off"},
		{desc: "a trailing empty document", file: route + "---\n"},
		{desc: "a later document of non-gateway keys", file: route + "---\nlogging.level.root: DEBUG\n",
			warning: "logging.level.root: ignored: not gateway configuration"},
		{desc: "a logging level beside a deeper one", file: route + "logging.level.org.springframework: INFO\nlogging.level.org.springframework.cloud.gateway: DEBUG\n",
			warning: "logging.level.org.springframework.cloud.gateway: ignored"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, errs, warnings := Import("app.yml", []byte(tc.file), noEnv)
			if len(errs) > 0 {
				t.Fatalf("errors:\n%v", errs)
			}
			if tc.warning != "" && !strings.Contains(warnings.Error(), tc.warning) {
				t.Errorf("warnings lack %q:\n%v", tc.warning, warnings)
			}
		})
	}
}

// TestProfileActiveInFile: the document of an active profile is applied
// over the first, as Spring Boot applies it: its properties win (whatever
// their spelling or dotting), a list replaces the whole list, mappings
// merge. spring.profiles.active written in the file activates a profile;
// SPRING_PROFILES_ACTIVE overrides it. Other profiles' documents are
// ignored, and the warning names what made them inactive.
func TestProfileActiveInFile(t *testing.T) {
	file := "spring.profiles.active: dev\nserver.port: 8081\nspring.cloud.gateway:\n  httpclient.connect-timeout: 1000\n  routes:\n" +
		"    - id: a\n      uri: http://127.0.0.1:9001\n    - id: a2\n      uri: http://127.0.0.1:9001\n" +
		"---\nspring.config.activate.on-profile: dev\nserver:\n  port: 9090\nspring.cloud.gateway.routes:\n  - id: b\n    uri: http://127.0.0.1:9002\n" +
		"spring.cloud.gateway.httpclient.response-timeout: 5s\n" +
		"---\nspring.config.activate.on-profile: prod\nserver.port: 80\n"
	cfg, errs, warnings := Import("app.yml", []byte(file), noEnv)
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].ID != "b" || cfg.Server.Listen != ":9090" || cfg.Server.ResponseTimeout != 5*time.Second ||
		cfg.UpstreamDefaults.ConnectTimeout != time.Second {
		t.Errorf("dev not applied over the first document: routes %d (%s), listen %s, response timeout %s, connect timeout %s",
			len(cfg.Routes), cfg.Routes[0].ID, cfg.Server.Listen, cfg.Server.ResponseTimeout, cfg.UpstreamDefaults.ConnectTimeout)
	}
	if !strings.Contains(warnings.Error(), `app.yml:19:1: ignored: a document for profile "prod", which is not active (spring.profiles.active)`) ||
		strings.Contains(warnings.Error(), "spring.profiles.active: ignored") {
		t.Errorf("warnings:\n%v", warnings)
	}
	// The environment variable wins over the file.
	cfg, errs, warnings = Import("app.yml", []byte(file), envOf(map[string]string{"SPRING_PROFILES_ACTIVE": "prod"}))
	if len(errs) > 0 || cfg.Server.Listen != ":80" || len(cfg.Routes) != 2 {
		t.Errorf("prod: errors %v, listen %s, %d routes", errs, cfg.Server.Listen, len(cfg.Routes))
	}
	if !strings.Contains(warnings.Error(), `app.yml:11:1: ignored: a document for profile "dev", which is not active (SPRING_PROFILES_ACTIVE)`) ||
		!strings.Contains(warnings.Error(), `app.yml:1:25: spring.profiles.active: ignored: SPRING_PROFILES_ACTIVE="prod" overrides it`) {
		t.Errorf("warnings:\n%v", warnings)
	}
}

// TestProperties reads an application.properties as Spring Boot does: the
// same properties, java.util.Properties' syntax and escapes, indexed lists.
func TestProperties(t *testing.T) {
	file := "# gateway\n" +
		"server.port=9090\n" +
		"spring.application.name = shop\\\n" +
		"   -gateway\n" +
		"spring.cloud.gateway.routes[0].id: users\n" +
		"spring.cloud.gateway.routes[0].uri=http://127.0.0.1:9001\n" +
		"spring.cloud.gateway.routes[0].predicates[0]=Path=/users/**\n" +
		"spring.cloud.gateway.routes[0].filters[0]=AddRequestHeader=X-Name, caf\\u00e9\n" +
		"spring.cloud.gateway.routes[0].filters[1].name=StripPrefix\n" +
		"spring.cloud.gateway.routes[0].filters[1].args.parts=1\n" +
		"spring.cloud.gateway.globalcors.cors-configurations.[/**].allowed-origins=https://a.example\n" +
		"logging.level.org.springframework=INFO\n" +
		"logging.level.org.springframework.cloud=DEBUG\n" +
		"! another comment\n" +
		"#---\n" +
		"spring.config.activate.on-profile=prod\n" +
		"server.port=80\n"
	if !IsSpring([]byte(file)) {
		t.Fatal("IsSpring: false for a properties file")
	}
	res, err := Convert("application.properties", []byte(file), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("errors:\n%v", res.Errors)
	}
	got := string(res.Marshal())
	for _, want := range []string{"listen: :9090", "id: users", "- Path=/users/**", "- AddRequestHeader=X-Name, café", "name: StripPrefix", "parts: \"1\"", "/**:", "allowed_origins: ['https://a.example']"} {
		if !strings.Contains(got, want) {
			t.Errorf("native config lacks %q:\n%s", want, got)
		}
	}
	if w := res.Warnings.Error(); !strings.Contains(w, "application.properties:3:1: spring.application.name: ignored") ||
		!strings.Contains(w, "application.properties:16:1: ignored: a document for profile \"prod\"") {
		t.Errorf("warnings:\n%s", w)
	}
	_, err = Convert("bad.properties", []byte("spring.cloud.gateway.routes[20000].id=a\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `bad.properties:1:1: spring.cloud.gateway.routes[20000].id: "spring.cloud.gateway.routes[20000].id": "20000" is not a list index`) {
		t.Errorf("bad index: %v", err)
	}
	// [x] that is not a number is a map key, as Spring binds it (args[pattern]); routes are a list.
	_, errs, _ := Import("bad.properties", []byte("spring.cloud.gateway.routes[x].id=a\n"), noEnv)
	if !strings.Contains(errs.Error(), `bad.properties:1:1: spring.cloud.gateway.routes: expected a list of routes`) {
		t.Errorf("a map key in a list: %v", errs)
	}
	res, err = Convert("args.properties", []byte("spring.cloud.gateway.routes[0].id=a\nspring.cloud.gateway.routes[0].uri=http://127.0.0.1:1\n"+
		"spring.cloud.gateway.routes[0].predicates[0].name=Path\nspring.cloud.gateway.routes[0].predicates[0].args[pattern]=/a/**\n"), noEnv)
	if err != nil || len(res.Errors) > 0 || !strings.Contains(string(res.Marshal()), "pattern: /a/**") {
		t.Errorf("args[pattern]: %v %v\n%s", err, res.Errors, res.Marshal())
	}
}

// TestConfigServerIsAnError: a file whose properties come from a config
// server (Nacos config, spring.config.import) would load without its routes;
// that is an error, not a silent difference.
func TestConfigServerIsAnError(t *testing.T) {
	file := "spring:\n  cloud:\n    nacos:\n      config:\n        server-addr: 127.0.0.1:8848\n  config:\n    import: optional:nacos:gateway.yml\n"
	_, errs, _ := Import("bootstrap.yml", []byte(file), noEnv)
	want := []string{"bootstrap.yml:5:22: spring.cloud.nacos.config.server-addr: not supported: properties kept in Nacos config",
		`bootstrap.yml:7:13: spring.config.import: not supported: "optional:nacos:gateway.yml" imports properties from a server`}
	for _, w := range want {
		if !strings.Contains(errs.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, errs)
		}
	}
}

// TestKeyResolverBeans: a key-resolver bean is mapped through
// sluice.key-resolvers in the same file; an unmapped one, and a RateLimiter
// bean, are one error each (not two).
func TestKeyResolverBeans(t *testing.T) {
	file := "sluice.key-resolvers:\n  ipKeyResolver: client_ip\n  unused: principal\n" +
		"spring.cloud.gateway.routes:\n  - id: a\n    uri: http://127.0.0.1:9001\n    filters:\n" +
		"      - name: RequestRateLimiter\n        args:\n          key-resolver: \"#{@ipKeyResolver}\"\n" +
		"  - id: b\n    uri: http://127.0.0.1:9001\n    filters:\n" +
		"      - name: RequestRateLimiter\n        args:\n          key-resolver: \"#{@userKeyResolver}\"\n          rate-limiter: \"#{@myLimiter}\"\n"
	res, err := Convert("app.yml", []byte(file), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`app.yml:16:25: spring.cloud.gateway.routes[1].filters[0].args.key-resolver: the key-resolver bean "userKeyResolver" is Java code: say what it keys on in this file, as sluice.key-resolvers.userKeyResolver: client_ip | header:NAME | path:VARIABLE | principal (see docs/spring-import.md)`,
		`app.yml:17:25: spring.cloud.gateway.routes[1].filters[0].args.rate-limiter: not supported: the RateLimiter bean "myLimiter" runs Java code; Sluice's rate limiter is the Redis token bucket set by redis-rate-limiter.*`,
	}
	if got := res.Errors.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.Contains(string(res.Marshal()), "key-resolver: client_ip") {
		t.Errorf("bean not mapped:\n%s", res.Marshal())
	}
	if !strings.Contains(res.Warnings.Error(), `app.yml:3:3: sluice.key-resolvers.unused: ignored: no route uses the key-resolver bean "unused"`) {
		t.Errorf("warnings:\n%v", res.Warnings)
	}
}

// TestDisabledRoute: a route with enabled: false is left out, as Spring
// leaves it out, instead of being converted into an enabled route.
func TestDisabledRoute(t *testing.T) {
	file := "spring.cloud.gateway.routes:\n  - id: off\n    uri: http://127.0.0.1:9001\n    enabled: false\n  - id: on\n    uri: http://127.0.0.1:9002\n    enabled: true\n"
	cfg, errs, warnings := Import("app.yml", []byte(file), noEnv)
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].ID != "on" {
		t.Fatalf("routes: %v", cfg.Routes)
	}
	if !strings.Contains(warnings.Error(), "app.yml:4:14: spring.cloud.gateway.routes[0].enabled: ignored: the route is disabled") {
		t.Errorf("warnings:\n%v", warnings)
	}
}

// TestResourceServer: Spring Security's JWT resource server becomes the JWT
// filter ahead of every route (OIDC discovery for issuer-uri alone), and
// TokenRelay, which then passes the client's token on, is left out; paths of
// the filters after it stay right.
func TestResourceServer(t *testing.T) {
	file := "spring:\n  security.oauth2.resourceserver.jwt:\n    issuer-uri: https://idp.example/realms/shop\n    audiences: [api]\n" +
		"  cloud.gateway:\n    default-filters:\n      - TokenRelay=\n      - StripPrefx=1\n"
	cfg, errs, _ := Import("app.yml", []byte(file), noEnv)
	if len(errs) > 0 {
		t.Fatalf("errors:\n%v", errs)
	}
	if len(cfg.DefaultFilters) != 2 {
		t.Fatalf("default filters: %+v", cfg.DefaultFilters)
	}
	jwt, next := cfg.DefaultFilters[0], cfg.DefaultFilters[1]
	if jwt.Name != "JWT" || jwt.Path != "spring.security.oauth2.resourceserver.jwt" {
		t.Errorf("first default filter %s at %s", jwt.Name, jwt.Path)
	}
	if next.Name != "StripPrefx" || next.Path != "spring.cloud.gateway.default-filters[1]" {
		t.Errorf("second default filter %s at %s, want StripPrefx at spring.cloud.gateway.default-filters[1]", next.Name, next.Path)
	}
	res, _ := Convert("app.yml", []byte(file), noEnv)
	if got := string(res.Marshal()); !strings.Contains(got, "issuer: https://idp.example/realms/shop\n      oidc_discovery: true\n      audience: [api]") {
		t.Errorf("native:\n%s", got)
	}
}
