package builtin

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
)

// javaRegexp compiles a Java regular expression as Spring writes it. Named
// groups "(?<name>…)" are accepted (Go spells them "(?P<name>…)"); Java-only
// constructs such as lookaround are reported as errors.
func javaRegexp(expr string) (*regexp.Regexp, error) {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c == '\\' && i+1 < len(expr) {
			b.WriteByte(c)
			b.WriteByte(expr[i+1])
			i++
			continue
		}
		if strings.HasPrefix(expr[i:], "(?<") && i+3 < len(expr) && expr[i+3] != '=' && expr[i+3] != '!' {
			b.WriteString("(?P<")
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	re, _, err := args.CompileRegexp(b.String())
	if err != nil {
		return nil, fmt.Errorf("regexp %q: %v", expr, err)
	}
	return re, nil
}

// javaReplacement turns a Java replacement string, as Spring's rewrite
// filters take it, into a template for regexp.Expand. First "$\" becomes "$"
// (Spring's escape, because "${" cannot be written in a YAML property); then
// "${name}" and "$n" refer to groups, "\$" is a literal dollar and "\x" a
// literal x.
func javaReplacement(re *regexp.Regexp, written string) (string, error) {
	repl := strings.ReplaceAll(written, `$\`, `$`)
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		switch c := repl[i]; c {
		case '\\':
			if i+1 == len(repl) {
				return "", fmt.Errorf("replacement %q: ends with a lone backslash", written)
			}
			i++
			if repl[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(repl[i])
			}
		case '$':
			rest := repl[i+1:]
			switch {
			case strings.HasPrefix(rest, "{"):
				j := strings.IndexByte(rest, '}')
				if j < 0 {
					return "", fmt.Errorf("replacement %q: unclosed ${", written)
				}
				name := rest[1:j]
				if re.SubexpIndex(name) < 0 {
					return "", fmt.Errorf("replacement %q: no group named %q", written, name)
				}
				b.WriteString("${" + name + "}")
				i += j + 1
			case rest != "" && rest[0] >= '0' && rest[0] <= '9':
				// Java reads digits while the number stays a valid group.
				n, j := int(rest[0]-'0'), 1
				for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' && n*10+int(rest[j]-'0') <= re.NumSubexp() {
					n = n*10 + int(rest[j]-'0')
					j++
				}
				if n > re.NumSubexp() {
					return "", fmt.Errorf("replacement %q: no group %d", written, n)
				}
				fmt.Fprintf(&b, "${%d}", n)
				i += j
			default:
				return "", fmt.Errorf("replacement %q: illegal group reference (write \\$ for a dollar)", written)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// rewriter replaces every match of a Java regexp by a Java replacement.
type rewriter struct {
	re   *regexp.Regexp
	tmpl string
}

func newRewriter(expr, repl string) (*rewriter, error) {
	re, err := javaRegexp(expr)
	if err != nil {
		return nil, err
	}
	t, err := javaReplacement(re, repl)
	if err != nil {
		return nil, err
	}
	return &rewriter{re: re, tmpl: t}, nil
}

// replaceAll is Java's String.replaceAll.
func (w *rewriter) replaceAll(s string) string {
	if !w.re.MatchString(s) {
		return s
	}
	return w.re.ReplaceAllString(s, w.tmpl)
}
