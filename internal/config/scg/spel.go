package scg

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The discovery locator writes its settings as SpEL expressions evaluated
// for each service. Sluice reads the simple forms Spring's documentation
// and real files use, and nothing else: string concatenation of quoted
// literals and serviceId ('/'+serviceId+'/**'), and conditions on
// serviceId (true, false, ==, !=, matches, startsWith, endsWith, contains,
// equals, with !, &&, ||, and, or, not and parentheses). Anything else is
// an error; no Java runs.

var errMetadata = errors.New("not supported: an expression on instance metadata; Sluice's locator knows services by name only")

type spelToken struct {
	kind string // "str", "id", or the operator itself
	text string
}

func spelLex(s string) ([]spelToken, error) {
	if strings.Contains(strings.ToLower(s), "metadata") {
		return nil, errMetadata
	}
	var out []spelToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(s) {
					return nil, fmt.Errorf("unclosed string in %q", s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' { // '' is a quote
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			out = append(out, spelToken{"str", b.String()})
			i = j + 1
		case isIdentByte(c):
			j := i
			for j < len(s) && (isIdentByte(s[j]) || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, spelToken{"id", s[i:j]})
			i = j
		default:
			op := ""
			for _, o := range []string{"==", "!=", "&&", "||", "+", "!", "(", ")", "."} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("%q is not one of the SpEL forms Sluice reads", s)
			}
			out = append(out, spelToken{op, op})
			i += len(op)
		}
	}
	return out, nil
}

func isIdentByte(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

type spelParser struct {
	src  string
	toks []spelToken
	i    int
	id   string // the value of serviceId
}

func (p *spelParser) peek() spelToken {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return spelToken{}
}

func (p *spelParser) next() spelToken { t := p.peek(); p.i++; return t }

func (p *spelParser) fail() error {
	return fmt.Errorf("%q is not one of the SpEL forms Sluice reads (quoted strings joined with + and serviceId; "+
		"conditions on serviceId with ==, !=, matches, startsWith, endsWith, contains, !, &&, ||)", p.src)
}

// spelString evaluates a concatenation of literals and serviceId.
func spelString(src, serviceID string) (string, error) {
	toks, err := spelLex(src)
	if err != nil {
		return "", err
	}
	p := &spelParser{src: src, toks: toks, id: serviceID}
	s, err := p.concat()
	if err == nil && p.i < len(p.toks) {
		err = p.fail()
	}
	return s, err
}

func (p *spelParser) concat() (string, error) {
	var b strings.Builder
	for {
		s, err := p.operand()
		if err != nil {
			return "", err
		}
		b.WriteString(s)
		if p.peek().kind != "+" {
			return b.String(), nil
		}
		p.next()
	}
}

func (p *spelParser) operand() (string, error) {
	t := p.next()
	switch {
	case t.kind == "str":
		return t.text, nil
	case t.kind == "id" && t.text == "serviceId":
		return p.id, nil
	}
	return "", p.fail()
}

// spelCondition evaluates an include-expression for a service.
func spelCondition(src, serviceID string) (bool, error) {
	toks, err := spelLex(src)
	if err != nil {
		return false, err
	}
	for i := range toks { // SpEL's word operators
		if toks[i].kind == "id" {
			switch strings.ToLower(toks[i].text) {
			case "and":
				toks[i] = spelToken{"&&", "&&"}
			case "or":
				toks[i] = spelToken{"||", "||"}
			case "not":
				toks[i] = spelToken{"!", "!"}
			case "eq":
				toks[i] = spelToken{"==", "=="}
			case "ne":
				toks[i] = spelToken{"!=", "!="}
			}
		}
	}
	p := &spelParser{src: src, toks: toks, id: serviceID}
	v, err := p.or()
	if err == nil && p.i < len(p.toks) {
		err = p.fail()
	}
	return v, err
}

func (p *spelParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.peek().kind == "||" {
		p.next()
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *spelParser) and() (bool, error) {
	v, err := p.unary()
	for err == nil && p.peek().kind == "&&" {
		p.next()
		var w bool
		w, err = p.unary()
		v = v && w
	}
	return v, err
}

func (p *spelParser) unary() (bool, error) {
	switch t := p.peek(); {
	case t.kind == "!":
		p.next()
		v, err := p.unary()
		return !v, err
	case t.kind == "(":
		p.next()
		v, err := p.or()
		if err == nil && p.next().kind != ")" {
			err = p.fail()
		}
		return v, err
	case t.kind == "id" && (strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false")):
		p.next()
		return strings.EqualFold(t.text, "true"), nil
	}
	return p.comparison()
}

func (p *spelParser) comparison() (bool, error) {
	left, err := p.operand()
	if err != nil {
		return false, err
	}
	switch t := p.next(); {
	case t.kind == "==" || t.kind == "!=":
		right, err := p.operand()
		return (left == right) == (t.kind == "=="), err
	case t.kind == "id" && t.text == "matches":
		right, err := p.operand()
		if err != nil {
			return false, err
		}
		re, err := regexp.Compile(`^(?:` + right + `)$`) // Java's matches is a whole match
		if err != nil {
			return false, fmt.Errorf("%q: %v", right, err)
		}
		return re.MatchString(left), nil
	case t.kind == ".":
		m := p.next()
		if p.next().kind != "(" {
			return false, p.fail()
		}
		arg, err := p.operand()
		if err != nil || p.next().kind != ")" {
			return false, cmpErr(err, p.fail())
		}
		switch m.text {
		case "startsWith":
			return strings.HasPrefix(left, arg), nil
		case "endsWith":
			return strings.HasSuffix(left, arg), nil
		case "contains":
			return strings.Contains(left, arg), nil
		case "equals":
			return left == arg, nil
		case "equalsIgnoreCase":
			return strings.EqualFold(left, arg), nil
		case "matches":
			re, err := regexp.Compile(`^(?:` + arg + `)$`)
			if err != nil {
				return false, fmt.Errorf("%q: %v", arg, err)
			}
			return re.MatchString(left), nil
		}
	}
	return false, p.fail()
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
