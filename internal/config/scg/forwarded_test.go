package scg

import (
	"fmt"
	"strings"
	"testing"
)

// TestForwardedProperties: the forwarded-header properties that ask for
// what Sluice does are accepted with a warning, the others are errors
// naming the line, and trusted-proxies becomes server.trusted_proxies.
func TestForwardedProperties(t *testing.T) {
	const route = "spring.cloud.gateway.routes:\n  - id: a\n    uri: http://127.0.0.1:9001\n"
	tests := []struct {
		file, warning, err, trusted string
		prefix                      bool // X-Forwarded-Prefix is sent
	}{
		{file: "spring.cloud.gateway.x-forwarded:\n  enabled: true\n  for-append: true\n",
			warning: "app.yml:6:15: spring.cloud.gateway.x-forwarded.for-append: ignored: Sluice sends X-Forwarded-For", prefix: true},
		{file: "spring.cloud.gateway.x-forwarded.prefix-enabled: true\n", warning: "x-forwarded.prefix-enabled: ignored", prefix: true},
		{file: "spring.cloud.gateway.x-forwarded.prefix-enabled: false\n", prefix: false},
		{file: "spring.cloud.gateway.forwarded.enabled: true\n", warning: "spring.cloud.gateway.forwarded.enabled: ignored", prefix: true},
		{file: "spring.cloud.gateway.x-forwarded.host-enabled: false\n",
			err: "app.yml:4:48: spring.cloud.gateway.x-forwarded.host-enabled: not supported: Sluice always sends"},
		{file: "spring.cloud.gateway.trusted-proxies: 10\\.0\\..*|192\\.168\\.1\\.7|::1\n", trusted: "[10.0.0.0/16 192.168.1.7/32 ::1/128]", prefix: true},
		{file: "spring.cloud.gateway.server.webflux.trusted-proxies: .*\n", trusted: "[0.0.0.0/0 ::/0]", prefix: true},
		{file: "spring.cloud.gateway.trusted-proxies: 10\\.0\\.0\\.[0-9]+\n", err: "app.yml:4:39: spring.cloud.gateway.trusted-proxies: not supported"},
	}
	for _, tc := range tests {
		cfg, errs, warnings := Import("app.yml", []byte(route+tc.file), noEnv)
		switch {
		case tc.err != "":
			if !strings.Contains(errs.Error(), tc.err) {
				t.Errorf("%s: errors lack %q:\n%v", tc.file, tc.err, errs)
			}
			continue
		case len(errs) > 0:
			t.Errorf("%s: errors:\n%v", tc.file, errs)
			continue
		}
		if tc.warning != "" && !strings.Contains(warnings.Error(), tc.warning) {
			t.Errorf("%s: warnings lack %q:\n%v", tc.file, tc.warning, warnings)
		}
		if cfg.Server.ForwardedPrefix != tc.prefix {
			t.Errorf("%s: forwarded_prefix %v, want %v", tc.file, cfg.Server.ForwardedPrefix, tc.prefix)
		}
		if tc.trusted != "" && fmt.Sprint(cfg.Server.TrustedProxies) != tc.trusted {
			t.Errorf("%s: trusted proxies %v, want %s", tc.file, cfg.Server.TrustedProxies, tc.trusted)
		}
	}
}
