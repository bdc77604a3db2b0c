package args

import (
	"fmt"
	"testing"
)

// TestBindRelaxed checks Spring's relaxed binding of named arguments and
// GATHER_LIST's collection of values whatever their names.
func TestBindRelaxed(t *testing.T) {
	tests := []struct {
		desc   string
		fields []string
		named  map[string][]string
		want   string
	}{
		{desc: "kebab-case names a camelCase field", fields: []string{"retries", "maxBackoff"},
			named: map[string][]string{"max-backoff": {"1s"}}, want: "map[maxBackoff:[1s]]"},
		{desc: "upper snake case", fields: []string{"fallbackUri"},
			named: map[string][]string{"FALLBACK_URI": {"forward:/x"}}, want: "map[fallbackUri:[forward:/x]]"},
		{desc: "the exact spelling wins over a relaxed one", fields: []string{"a-b", "aB"},
			named: map[string][]string{"aB": {"1"}}, want: "map[aB:[1]]"},
		{desc: "Path's values under another name are gathered", fields: []string{"patterns...", "matchTrailingSlash"},
			named: map[string][]string{"pattern": {"/a/**"}, "match-trailing-slash": {"false"}}, want: "map[matchTrailingSlash:[false] patterns:[/a/**]]"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			a, err := Spec{Named: tc.named}.Bind(tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(map[string][]string(a)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := (Spec{Named: map[string][]string{"nope": {"1"}}}).Bind([]string{"a", "b"}); err == nil {
		t.Error("an unknown argument was accepted")
	}
}
