package route

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/args"
)

// spec parses the shortcut form "Name=a, b" as the config package does.
func spec(s string) args.Spec {
	name, rest, _ := strings.Cut(s, "=")
	sp := args.Spec{Name: name}
	if rest != "" {
		for _, v := range strings.Split(rest, ",") {
			sp.Positional = append(sp.Positional, strings.TrimSpace(v))
		}
	}
	return sp
}

// newPredicate builds a predicate from its shortcut form.
func newPredicate(s string, env *Env) (Predicate, error) {
	sp := spec(s)
	f, ok := Predicates()[sp.Name]
	if !ok {
		return nil, &unknownError{sp.Name}
	}
	a, err := sp.Bind(f.Fields)
	if err == nil {
		var p Predicate
		if p, err = f.New(a, env); err == nil {
			return p, nil
		}
	}
	// As the gateway reports it.
	return nil, fmt.Errorf("%s: %w", sp.Name, err)
}

type unknownError struct{ name string }

func (e *unknownError) Error() string { return "unknown predicate " + e.name }

func mustPredicate(t testing.TB, s string, env *Env) Predicate {
	t.Helper()
	p, err := newPredicate(s, env)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return p
}

// mustInput prepares an Input for a request to target ("/path" or
// "http://host/path?query"), after applying edit to the request.
func mustInput(t testing.TB, method, target string, edit func(r *http.Request)) *Input {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if edit != nil {
		edit(r)
	}
	in := new(Input)
	if err := in.Prepare(r); err != nil {
		t.Fatalf("Prepare(%s): %v", target, err)
	}
	return in
}

func varsString(v *Vars) string {
	var b strings.Builder
	for name, value := range v.All() {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name + "=" + value)
	}
	return b.String()
}

// argsSpec builds an expanded-form args.Spec.
type argsSpec struct {
	positional []string
	named      map[string][]string
}

func (s argsSpec) bind(fields []string) (args.Args, error) {
	return args.Spec{Positional: s.positional, Named: s.named}.Bind(fields)
}

// matchIndex is Table.Match as the index of the route in the slice given
// to NewTable (-1 for none).
func matchIndex(t *Table, in *Input) (int, bool) {
	r, ok := t.Match(in)
	if !ok {
		return -1, false
	}
	return r.index, true
}
