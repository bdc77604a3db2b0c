package config_test

import (
	"fmt"

	"github.com/sluice-gw/sluice/internal/config"
)

func ExampleParse() {
	const src = `
upstreams:
  backend:
    endpoints: ["127.0.0.1:9001", {address: "127.0.0.1:9002", weight: 2}]
routes:
  - id: api
    uri: lb://backend
    predicates: ["Path=/api/**", {name: Method, args: {methods: [GET, POST]}}]
  - id: direct
    uri: https://example.com
`
	c, err := config.Parse("sluice.yaml", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range c.Routes {
		u := c.Upstreams[r.Upstream]
		fmt.Println(r.ID, r.Scheme, u.Name, u.Endpoints, u.Implicit, r.ResponseTimeout, r.Retry.Attempts)
	}
	for _, p := range c.Routes[0].Predicates {
		fmt.Printf("%s: %s %q %q\n", p.Path, p.Name, p.Positional, p.Named)
	}
	// Output:
	// api http backend [{127.0.0.1:9001 1} {127.0.0.1:9002 2}] false 30s 3
	// direct https https://example.com:443 [{example.com:443 1}] true 30s 3
	// routes[0].predicates[0]: Path ["/api/**"] map[]
	// routes[0].predicates[1]: Method [] map["methods":["GET" "POST"]]
}

func ExampleParse_errors() {
	const src = `
upstreams:
  backend:
    endpoints: ["127.0.0.1:9001"]
    pool: {max_idle_time: 4x}
routes:
  - id: api
    uri: lb://backnd
    predicates: [{name: Path, patern: /api}]
`
	_, err := config.Parse("sluice.yaml", []byte(src))
	fmt.Println(err)
	// Output:
	// sluice.yaml:5:27: upstreams.backend.pool.max_idle_time: "4x" is not a duration (like 500ms or 30s)
	// sluice.yaml:8:10: routes[0].uri: upstream "backnd" is not defined (defined: backend)
	// sluice.yaml:9:31: routes[0].predicates[0]: unknown key "patern"
}

// A composition root reports what only it can check, like an unknown
// predicate name, in the same format.
func ExampleConfig_Errorf() {
	c, _ := config.Parse("sluice.yaml", []byte("routes: [{id: a, uri: 'http://h', predicates: [Paht=/x]}]"))
	p := c.Routes[0].Predicates[0]
	fmt.Println(c.Errorf(p.Pos, p.Path, "unknown predicate %q (did you mean Path?)", p.Name))
	// Output:
	// sluice.yaml:1:48: routes[0].predicates[0]: unknown predicate "Paht" (did you mean Path?)
}
