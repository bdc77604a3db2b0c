package gateway_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/config/scg"
	"github.com/sluice-gw/sluice/internal/filter/builtin"
	"github.com/sluice-gw/sluice/internal/route"
)

// TestSpringImportTable keeps the predicate and filter table of
// docs/spring-import.md true: every name the gateway has is in it; a
// supported or sluice one is in the gateway's registry and an imported file
// using it has no error; an unsupported one is not, and importing it is an
// error; a mapped one imports without error in the setting the table names.
func TestSpringImportTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/spring-import.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([A-Za-z]+)` \\| (predicate|filter) \\| (supported|mapped|unsupported|sluice) \\|")
	type entry struct{ kind, status string }
	table := map[string]entry{}
	for l := range strings.SplitSeq(string(b), "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			table[m[1]] = entry{m[2], m[3]}
		}
	}
	preds, filters := route.Predicates(), builtin.Filters()
	for _, name := range slices.Sorted(maps.Keys(preds)) {
		if e, ok := table[name]; !ok || e.kind != "predicate" {
			t.Errorf("predicate %s is not in the table", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		if e, ok := table[name]; !ok || e.kind != "filter" {
			t.Errorf("filter %s is not in the table", name)
		}
	}
	env := func(string) (string, bool) { return "", false }
	for _, name := range slices.Sorted(maps.Keys(table)) {
		e := table[name]
		_, inRegistry := filters[name]
		list := "filters"
		if e.kind == "predicate" {
			_, inRegistry = preds[name]
			list = "predicates"
		}
		file := "spring.cloud.gateway.routes:\n  - id: a\n    uri: http://127.0.0.1:9001\n    " + list + ":\n      - name: " + name + "\n"
		if e.status == "mapped" {
			file = "spring.security.oauth2.resourceserver.jwt.jwk-set-uri: https://idp.example/jwks\n" + file
		}
		_, errs, _ := scg.Import("app.yml", []byte(file), env)
		switch e.status {
		case "supported", "sluice":
			if !inRegistry {
				t.Errorf("%s is %s in the table but not in the gateway's %s", name, e.status, list)
			}
			if len(errs) > 0 {
				t.Errorf("%s: importing it: %v", name, errs)
			}
		case "unsupported":
			if inRegistry {
				t.Errorf("%s is unsupported in the table but the gateway has it", name)
			}
			if !strings.Contains(errs.Error(), "not supported: "+name) {
				t.Errorf("%s: importing it reports %v, want a not supported error", name, errs)
			}
		case "mapped":
			if len(errs) > 0 {
				t.Errorf("%s: importing it: %v", name, errs)
			}
		}
	}
}
