package scg

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// securityBlock maps Spring Security's OAuth2 resource server
// (spring.security.oauth2.resourceserver.jwt) onto Sluice's JWT filter, run
// before every route's filters: jwk-set-uri is jwks_url; issuer-uri is
// issuer, and without jwk-set-uri the JWKS is found by OIDC discovery, as
// Spring finds it; audiences is audience; jws-algorithms is algorithms. As
// with Spring Boot's defaults, every request then needs a valid token.
func (c *converter) securityBlock() {
	jwt := c.root.get("spring.security.oauth2.resourceserver.jwt")
	if jwt == nil {
		return
	}
	f := mapNode(jwt.key)
	add(f, "name", strNode("JWT", jwt.key))
	args := mapNode(jwt.key)
	set := 0
	for _, m := range []struct{ spring, native string }{
		{"jwk-set-uri", "jwks_url"}, {"issuer-uri", "issuer"},
	} {
		if p := c.setting("spring.security.oauth2.resourceserver.jwt." + m.spring); p != nil {
			if s, ok := c.str(p); ok && s != "" {
				add(args, m.native, strNode(s, p.value))
				set++
			}
		}
	}
	if set == 0 {
		c.errorf(jwt.key, jwt.path, "not supported: a resource server without jwk-set-uri or issuer-uri (public-key-location is Java's classpath)")
		return
	}
	if jwt.kid("jwk-set-uri") == nil {
		add(args, "oidc_discovery", boolNode(true, jwt.key))
	}
	for _, m := range []struct{ spring, native string }{{"audiences", "audience"}, {"jws-algorithms", "algorithms"}} {
		if p := jwt.kid(m.spring); p != nil {
			if l, ok := c.list(p); ok {
				add(args, m.native, flowList(l, p.value))
			}
		}
	}
	add(f, "args", args)
	c.jwt, c.jwtAt = f, jwt
}

// addJWT puts the resource server's JWT filter first among the default filters.
func (c *converter) addJWT() {
	if c.jwt == nil {
		return
	}
	if c.defaultFilters == nil {
		c.defaultFilters = seqNode(c.jwt)
	} else {
		for i, f := range c.defaultFilters.Content { // the Spring filters move one place down
			c.mapPath(fmt.Sprintf("default_filters[%d]", i+1), c.defPath(f, c.res.paths[fmt.Sprintf("default_filters[%d]", i)]))
		}
	}
	c.defaultFilters.Content = append([]*yaml.Node{c.jwt}, c.defaultFilters.Content...)
	c.mapPath("default_filters[0]", c.jwtAt.path)
}

// tokenRelay reports whether the filter named name is a TokenRelay that a
// resource server makes a no-op: the client's bearer token, already checked,
// goes to the backend as it came.
func (c *converter) tokenRelay(name string, at *prop) bool {
	if c.jwt == nil || !strings.EqualFold(strings.TrimSpace(name), "TokenRelay") {
		return false
	}
	c.warnf(at.value, at.path, "ignored: TokenRelay: the client's bearer token, checked by the resource server's JWT filter, goes to the backend as it came")
	return true
}
