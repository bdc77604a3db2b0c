package scg

import (
	"errors"
	"fmt"
	"strings"
)

// maxPlaceholderDepth bounds placeholders in placeholder values, which may
// form a cycle; maxPlaceholders bounds the placeholders resolved in one file,
// which values holding several placeholders could otherwise multiply
// without end (a: ${b}${b}, b: ${c}${c}, …).
const (
	maxPlaceholderDepth = 10
	maxPlaceholders     = 10_000
)

// expand resolves Spring property placeholders in s: ${NAME} and
// ${NAME:default}, nested in names, defaults and values. NAME is looked up as
// Spring does: in the environment (as written, then with '.' and '-' as '_',
// then upper-cased), then as a property of the file itself. A placeholder
// without a value or a default is an error, as it is in Spring.
func (c *converter) expand(s string, depth int) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	if depth > maxPlaceholderDepth {
		return "", errors.New("placeholders nested too deeply (or in a cycle)")
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		if c.placeholders++; c.placeholders > maxPlaceholders {
			return "", fmt.Errorf("more than %d placeholders to resolve in the file", maxPlaceholders)
		}
		end := closing(s, i+2)
		if end < 0 {
			return "", fmt.Errorf("%q: unclosed placeholder", s)
		}
		inner := s[i+2 : end]
		name, def, hasDef := cutDefault(inner)
		name, err := c.expand(name, depth+1)
		if err != nil {
			return "", err
		}
		v, ok := c.lookup(name)
		switch {
		case ok:
		case hasDef:
			v = def
		default:
			return "", fmt.Errorf("placeholder ${%s} has no value: set %s in the environment or give a default (${%s:value})", inner, envName(name), inner)
		}
		if v, err = c.expand(v, depth+1); err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[end+1:]
	}
}

// closing returns the index of the '}' that closes a placeholder whose name starts at i, or -1.
func closing(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

// cutDefault splits NAME:default at the first ':' outside a nested placeholder.
func cutDefault(s string) (name, def string, ok bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			depth--
		case s[i] == ':' && depth == 0:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// lookup finds a placeholder's value in the environment or the file.
func (c *converter) lookup(name string) (string, bool) {
	for _, n := range []string{name, envSeparators.Replace(name), envName(name)} {
		if v, ok := c.env(n); ok {
			return v, true
		}
	}
	if p := c.root.get(name); p != nil && p.isScalar() && !p.isNull() {
		return p.value.Value, true
	}
	return "", false
}

// envName is the environment variable Spring reads for a property: server.port → SERVER_PORT.
func envName(name string) string {
	return strings.ToUpper(envSeparators.Replace(name))
}

var envSeparators = strings.NewReplacer(".", "_", "-", "_")
