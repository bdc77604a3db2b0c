package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDocs checks that docs/config.md names every key and that its example parses.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)

	_, example, _ := strings.Cut(doc, "```yaml\n")
	example, _, _ = strings.Cut(example, "```")
	if _, err := Parse("docs/config.md", []byte(example)); err != nil {
		t.Errorf("the example does not parse:\n%v", err)
	}

	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		fs, keys := fields(typ)
		for _, k := range keys {
			if !slices.ContainsFunc([]string{"`" + k + "`", "." + k + "`", "`" + k + ".", "." + k + ".", "## " + k + "\n"}, func(s string) bool {
				return strings.Contains(doc, s)
			}) {
				t.Errorf("docs/config.md does not describe %s.%s (`%s`)", typ.Name(), typ.Field(fs[k].index).Name, k)
			}
			walk(typ.Field(fs[k].index).Type)
		}
	}
	walk(reflect.TypeFor[Config]())
}
