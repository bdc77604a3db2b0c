package cors

import "testing"

func TestOriginPattern(t *testing.T) {
	tests := []struct {
		name, pattern, origin string
		want                  bool
	}{
		{name: "star matches all", pattern: "*", origin: "https://x.example", want: true},
		{name: "subdomain wildcard", pattern: "https://*.example.com", origin: "https://a.example.com", want: true},
		{name: "wildcard needs the dot", pattern: "https://*.example.com", origin: "https://example.com"},
		{name: "scheme must match", pattern: "https://*.example.com", origin: "http://a.example.com"},
		{name: "port list", pattern: "https://*.example.com:[8080,8081]", origin: "https://a.example.com:8081", want: true},
		{name: "port not in list", pattern: "https://*.example.com:[8080,8081]", origin: "https://a.example.com:9000"},
		{name: "no port with a port list", pattern: "https://*.example.com:[8080]", origin: "https://a.example.com"},
		{name: "any port", pattern: "https://*.example.com:[*]", origin: "https://a.example.com:1234", want: true},
		{name: "any port or none", pattern: "https://*.example.com:[*]", origin: "https://a.example.com", want: true},
		{name: "dots are literal", pattern: "https://a.example.com", origin: "https://aXexample.com"},
		{name: "case-insensitive", pattern: "https://*.Example.com", origin: "https://a.example.com", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compile(Policy{AllowedOriginPatterns: []string{tc.pattern}})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.allowOrigin(tc.origin) != ""; got != tc.want {
				t.Errorf("%q allows %q: %v", tc.pattern, tc.origin, got)
			}
		})
	}
}
