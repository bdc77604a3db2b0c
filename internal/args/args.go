// Package args holds the arguments of one predicate or filter, and decodes them.
//
// Spring Cloud Gateway accepts two spellings of the same thing:
//
//	predicates: ["Header=X-Request-Id, \d+"]                                   # shortcut
//	predicates: [{name: Header, args: {header: X-Request-Id, regexp: '\d+'}}] # expanded
//
// The config package parses both into a Spec. The factory of each predicate
// or filter declares its Fields (the shortcut order), and Spec.Bind maps
// positional values onto those names, so a factory reads named values only
// and never sees YAML.
package args

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A Spec is a predicate or filter as written in the config.
type Spec struct {
	Name string
	// Positional holds the shortcut values (Name=a,b,c), already split and trimmed.
	Positional []string
	// Named holds the expanded form's args. Each value is a list: a scalar becomes
	// a one-element list, a YAML sequence keeps its elements. Keys such as
	// "_genkey_0" (Spring's generated keys) count as positional.
	Named map[string][]string
}

// Args are named argument values, ready for a factory.
type Args map[string][]string

// Bind maps s onto fields, in shortcut order. A field ending in "..." gathers
// every remaining positional value (Spring's GATHER_LIST). Named keys bind
// the Spring way (relaxed binding): maxBackoff, max-backoff, max_backoff and
// MAX_BACKOFF name one field. When the first field gathers, named keys that
// name no field are gathered into it too, as Spring's GATHER_LIST collects
// every value whatever its name (Path's "pattern"). Other unknown named keys
// and surplus positional values are errors.
func (s Spec) Bind(fields []string) (Args, error) {
	a := Args{}
	pos := s.Positional
	gatherFirst := len(fields) > 0 && strings.HasSuffix(fields[0], "...")
	for _, k := range slices.Sorted(maps.Keys(s.Named)) {
		v := s.Named[k]
		if n, ok := strings.CutPrefix(k, "_genkey_"); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 || i >= len(fields) {
				return nil, fmt.Errorf("unexpected argument %q", k)
			}
			a[strings.TrimSuffix(fields[i], "...")] = append(a[strings.TrimSuffix(fields[i], "...")], v...)
			continue
		}
		name, ok := field(fields, k)
		switch {
		case ok:
			a[name] = append(a[name], v...)
		case gatherFirst:
			name = strings.TrimSuffix(fields[0], "...")
			a[name] = append(a[name], v...)
		default:
			return nil, fmt.Errorf("unknown argument %q (expected %s)", k, fieldList(fields))
		}
	}
	for i, f := range fields {
		if len(pos) == 0 {
			break
		}
		name, gather := strings.CutSuffix(f, "...")
		if gather {
			a[name] = append(a[name], pos...)
			pos = nil
			break
		}
		_ = i
		a[name] = append(a[name], pos[0])
		pos = pos[1:]
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("too many arguments: %d given, at most %d expected (%s)", len(s.Positional), len(fields), fieldList(fields))
	}
	return a, nil
}

// field returns the field that key names: the field written exactly so,
// else the first one equal under relaxed binding.
func field(fields []string, key string) (string, bool) {
	for _, f := range fields {
		if f = strings.TrimSuffix(f, "..."); f == key {
			return f, true
		}
	}
	for _, f := range fields {
		if f = strings.TrimSuffix(f, "..."); relaxed(f) == relaxed(key) {
			return f, true
		}
	}
	return "", false
}

// relaxed is Spring's canonical form of a property name: lower case,
// without '-' and '_'.
func relaxed(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return unicode.ToLower(r)
	}, name)
}

func fieldList(fields []string) string {
	if len(fields) == 0 {
		return "no arguments"
	}
	return strings.Join(fields, ", ")
}

// Has reports whether name was given.
func (a Args) Has(name string) bool { return len(a[name]) > 0 }

// Strings returns every value of name.
func (a Args) Strings(name string) []string { return a[name] }

// String returns the single value of name, or def when absent.
func (a Args) String(name, def string) (string, error) {
	switch v := a[name]; len(v) {
	case 0:
		return def, nil
	case 1:
		return v[0], nil
	default:
		return "", fmt.Errorf("%s: expected one value, got %d", name, len(v))
	}
}

// Required returns the single value of name, which must be present and non-empty.
func (a Args) Required(name string) (string, error) {
	v, err := a.String(name, "")
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("%s: required", name)
	}
	return v, nil
}

// Int returns name as an integer, or def when absent.
func (a Args) Int(name string, def int) (int, error) {
	s, err := a.String(name, "")
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", name, s)
	}
	return n, nil
}

// Bool returns name as a boolean, or def when absent.
func (a Args) Bool(name string, def bool) (bool, error) {
	s, err := a.String(name, "")
	if err != nil || s == "" {
		return def, err
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", name, s)
	}
	return b, nil
}

// Duration returns name as a Go duration ("30s"), or def when absent. A bare
// integer is read as milliseconds, as Spring does.
func (a Args) Duration(name string, def time.Duration) (time.Duration, error) {
	s, err := a.String(name, "")
	if err != nil || s == "" {
		return def, err
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (like 500ms or 30s)", name, s)
	}
	return d, nil
}
