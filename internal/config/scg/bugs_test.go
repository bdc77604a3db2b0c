package scg

import (
	"strings"
	"testing"
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

// TestProfileActiveInFile: spring.profiles.active written in the file
// activates a profile as the environment variable does, so its document is
// not ignored (it changes the routes: an error, as any merged document).
func TestProfileActiveInFile(t *testing.T) {
	file := "spring.profiles.active: dev\nspring.cloud.gateway.routes:\n  - id: a\n    uri: http://127.0.0.1:9001\n" +
		"---\nspring.config.activate.on-profile: dev\nspring.cloud.gateway.routes:\n  - id: b\n    uri: http://127.0.0.1:9002\n" +
		"---\nspring.config.activate.on-profile: prod\nserver.port: 80\n"
	_, errs, warnings := Import("app.yml", []byte(file), noEnv)
	if !strings.Contains(errs.Error(), "app.yml:6:1: not supported: a second document, which Spring applies over the first") {
		t.Errorf("the active profile's document was not reported:\n%v", errs)
	}
	if !strings.Contains(warnings.Error(), `app.yml:11:1: ignored: a document for profile "prod", which is not active (spring.profiles.active)`) {
		t.Errorf("warnings:\n%v", warnings)
	}
}
