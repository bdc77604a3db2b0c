package scg

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config"
)

// TestLocatorRoutes: with the discovery locator on, every service the
// registry lists gets Spring Cloud Gateway's route (its defaults, or the
// file's SpEL predicates and filters, evaluated for the service), after
// the file's own routes; include-expression picks the services;
// lower-case-service-id lowers the id in the predicates and filters only.
// They come before the file's routes, as in Spring, whose
// GatewayDiscoveryClientAutoConfiguration registers its route locator
// before the properties' one.
func TestLocatorRoutes(t *testing.T) {
	const eureka = "eureka.client.service-url.defaultZone: http://127.0.0.1:8761/eureka/\n"
	const explicit = "spring.cloud.gateway.routes:\n  - id: orders\n    uri: http://127.0.0.1:9001\n    predicates: [Path=/orders/**]\n"
	tests := []struct {
		desc, file string
		services   []string
		want       []string // "id uri predicates filters" of each route
		err        string
	}{
		{desc: "Spring's defaults, before the file's routes (as Spring lists them)",
			file: explicit + "spring.cloud.gateway.discovery.locator.enabled: true\n" + eureka, services: []string{"USER-SERVICE", "orders"},
			want: []string{
				"ReactiveCompositeDiscoveryClient_USER-SERVICE lb://USER-SERVICE [Path{pattern=/USER-SERVICE/**}] [RewritePath{regexp=/USER-SERVICE/?(?<remaining>.*),replacement=/${remaining}}]",
				"ReactiveCompositeDiscoveryClient_orders lb://orders [Path{pattern=/orders/**}] [RewritePath{regexp=/orders/?(?<remaining>.*),replacement=/${remaining}}]",
				"orders http://127.0.0.1:9001 [Path=/orders/**] []"}},
		{desc: "the 4.x prefix, lower-case ids, an include-expression, SpEL shortcut forms",
			file: "spring.cloud.gateway.server.webflux.discovery.locator:\n  enabled: true\n  lower-case-service-id: true\n" +
				"  include-expression: serviceId.startsWith('U') and !serviceId.endsWith('-ADMIN')\n" +
				"  route-id-prefix: auto-\n" +
				"  predicates:\n    - Path='/api/'+serviceId+'/**'\n" +
				"  filters:\n    - name: StripPrefix\n      args:\n        parts: \"'2'\"\n" + eureka,
			services: []string{"USER-SERVICE", "USER-ADMIN", "PAY"},
			want:     []string{"auto-USER-SERVICE lb://USER-SERVICE [Path=/api/user-service/**] [StripPrefix{parts=2}]"}},
		{desc: "no services yet: no routes", file: "spring.cloud.gateway.discovery.locator.enabled: true\n" + eureka},
		{desc: "no registry", file: "spring.cloud.gateway.discovery.locator.enabled: true\n",
			err: "app.yml:1:49: spring.cloud.gateway.discovery.locator.enabled: the discovery locator needs a service registry"},
		{desc: "metadata in include-expression",
			file: "spring.cloud.gateway.discovery.locator:\n  enabled: true\n  include-expression: metadata['gateway']=='true'\n" + eureka,
			err:  "app.yml:3:23: spring.cloud.gateway.discovery.locator.include-expression: not supported: an expression on instance metadata"},
		{desc: "other SpEL",
			file: "spring.cloud.gateway.discovery.locator:\n  enabled: true\n  url-expression: \"'lb://'+serviceId.toUpperCase()\"\n" + eureka,
			err:  "app.yml:3:19: spring.cloud.gateway.discovery.locator.url-expression: \"'lb://'+serviceId.toUpperCase()\" is not one of the SpEL forms"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg, errs, _ := ImportServices("app.yml", []byte(tc.file), noEnv, tc.services)
			if tc.err != "" {
				if !strings.Contains(errs.Error(), tc.err) {
					t.Fatalf("errors lack %q:\n%v", tc.err, errs)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors:\n%v", errs)
			}
			if cfg.ServiceList == nil || cfg.ServiceList.Type != "eureka" || cfg.ServiceList.Servers[0] != "http://127.0.0.1:8761/eureka/" {
				t.Errorf("service list %+v", cfg.ServiceList)
			}
			var got []string
			for _, r := range cfg.Routes {
				got = append(got, fmt.Sprintf("%s %s %v %v", r.ID, r.URI, defs(r.Predicates), defs(r.Filters)))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// defs writes definitions as Name=a,b or Name{k=v,k=v}.
func defs(ds []config.Definition) []string {
	out := []string{}
	for _, d := range ds {
		if len(d.Named) == 0 {
			out = append(out, d.Name+"="+strings.Join(d.Positional, ","))
			continue
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(d.Named)) {
			kv = append(kv, k+"="+strings.Join(d.Named[k], ","))
		}
		out = append(out, d.Name+"{"+strings.Join(kv, ",")+"}")
	}
	return out
}
