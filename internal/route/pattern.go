package route

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/internal/args"
)

// This file compiles the segments shared by Path patterns (separator '/')
// and Host patterns (separator '.'):
//
//	literal     text compared byte for byte
//	*           any non-empty text (Path: may be empty at the very end)
//	{name}      any non-empty text, captured
//	{name:re}   text fully matching re, captured
//	a?c, *.png  a glob: '?' is one byte, '*' zero or more bytes
//	{n}.{ext}   a mix with captures, compiled to one regexp (allocates on match)
//
// plus "**" (any number of segments) and, in paths, "{*name}".

type segKind uint8

const (
	segLiteral   segKind = iota
	segAny               // "*"
	segCapture           // "{name}"
	segCaptureRE         // "{name:re}"
	segGlob              // '?' and '*' within literal text
	segRegexp            // text mixed with captures
	segMulti             // "**": zero or more whole segments
)

type segment struct {
	kind   segKind
	text   string         // segLiteral, segGlob
	name   string         // segCapture, segCaptureRE
	re     *regexp.Regexp // segCaptureRE, segRegexp
	names  []string       // segRegexp: variable names, in group order
	groups []int          // segRegexp: submatch index of each name
	// maxInput: a longer segment does not match re (args.MatchBudget).
	maxInput int
}

// match reports whether s (one segment, without separators) matches, and
// adds the captured variables to vars.
func (g *segment) match(s string, vars *Vars) bool {
	switch g.kind {
	case segLiteral:
		return s == g.text
	case segAny:
		return s != ""
	case segCapture:
		if s == "" {
			return false
		}
		vars.add(g.name, s)
		return true
	case segCaptureRE:
		if len(s) > g.maxInput || !g.re.MatchString(s) {
			return false
		}
		vars.add(g.name, s)
		return true
	case segGlob:
		return glob(g.text, s)
	case segRegexp:
		if len(s) > g.maxInput {
			return false
		}
		m := g.re.FindStringSubmatchIndex(s)
		if m == nil {
			return false
		}
		for i, name := range g.names {
			if j := g.groups[i]; m[2*j] >= 0 {
				vars.add(name, s[m[2*j]:m[2*j+1]])
			}
		}
		return true
	}
	return false
}

// glob matches s against pattern, where '?' is any one character and '*'
// any run of bytes. It backtracks only to the last '*', so it runs in O(len²) at
// worst and never allocates.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// errMissingClose is reported for an unterminated "{".
var errMissingClose = errors.New(`missing "}"`)

// splitPattern splits p at sep, except inside {...}.
func splitPattern(p string, sep byte) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if depth > 0 {
				i++
			}
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return nil, errors.New(`"}" without "{"`)
			}
			depth--
		case sep:
			if depth == 0 {
				parts = append(parts, p[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, errMissingClose
	}
	return append(parts, p[start:]), nil
}

// segmentParser compiles the segments of one pattern, checking that
// variable names are unique and not too many.
type segmentParser struct {
	fold  bool // Host: lower-case literals, case-insensitive regexps
	names []string
}

func (sp *segmentParser) addName(name string) error {
	if name == "" || strings.ContainsAny(name, "{}:*/") {
		return fmt.Errorf("invalid variable name %q", name)
	}
	for _, n := range sp.names {
		if n == name {
			return fmt.Errorf("variable %q captured twice", name)
		}
	}
	if len(sp.names) == MaxVars {
		return fmt.Errorf("more than %d variables", MaxVars)
	}
	sp.names = append(sp.names, name)
	return nil
}

// token is one piece of a segment: literal text, "?", "*" or a capture.
type token struct {
	lit     string
	wild    byte // '?' or '*'
	capture bool
	name    string
	expr    string // capture regexp, "" for any
}

func (sp *segmentParser) tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '?', '*':
			toks = append(toks, token{wild: c})
			i++
		case '{':
			end, err := closingBrace(s, i)
			if err != nil {
				return nil, err
			}
			body := s[i+1 : end]
			name, expr, hasExpr := strings.Cut(body, ":")
			if strings.HasPrefix(name, "*") {
				return nil, fmt.Errorf(`"{%s}": "{*name}" is only allowed as the whole last path segment`, body)
			}
			if hasExpr && expr == "" {
				return nil, fmt.Errorf("variable %q: empty regexp", name)
			}
			if err := sp.addName(name); err != nil {
				return nil, err
			}
			toks = append(toks, token{capture: true, name: name, expr: expr})
			i = end + 1
		case '}':
			return nil, errors.New(`"}" without "{"`)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune("?*{}", rune(s[j])) {
				j++
			}
			lit := s[i:j]
			if sp.fold {
				lit = strings.ToLower(lit)
			}
			toks = append(toks, token{lit: lit})
			i = j
		}
	}
	return toks, nil
}

// closingBrace returns the index of the "}" closing the "{" at s[open],
// honouring nested braces and backslash escapes in regexps.
func closingBrace(s string, open int) (int, error) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, errMissingClose
}

// segment compiles one segment. "**" is handled by the callers.
func (sp *segmentParser) segment(s string) (segment, error) {
	toks, err := sp.tokenize(s)
	if err != nil {
		return segment{}, err
	}
	captures, wild := 0, false
	for _, t := range toks {
		if t.capture {
			captures++
		}
		if t.wild != 0 {
			wild = true
		}
	}
	switch {
	case len(toks) == 1 && toks[0].wild == '*':
		return segment{kind: segAny}, nil
	case len(toks) == 1 && toks[0].capture && toks[0].expr == "":
		return segment{kind: segCapture, name: toks[0].name}, nil
	case len(toks) == 1 && toks[0].capture:
		re, maxInput, err := compileAnchored(toks[0].expr, sp.fold)
		if err != nil {
			return segment{}, fmt.Errorf("variable %q: %w", toks[0].name, err)
		}
		return segment{kind: segCaptureRE, name: toks[0].name, re: re, maxInput: maxInput}, nil
	case captures == 0:
		g := segment{kind: segLiteral, text: s}
		if sp.fold {
			g.text = strings.ToLower(s)
		}
		if wild {
			g.kind = segGlob
		}
		return g, nil
	}
	// A mix of text and captures: one regexp, as Spring's RegexPathElement.
	var b strings.Builder
	b.WriteString("(?s)^") // '?' and '*' match any byte, even a decoded newline
	g := segment{kind: segRegexp}
	for _, t := range toks {
		switch {
		case t.wild == '?':
			b.WriteString(".")
		case t.wild == '*':
			b.WriteString(".*")
		case t.capture:
			expr := t.expr
			if expr == "" {
				expr = ".*"
			}
			if err := checkRegexp(expr); err != nil {
				return segment{}, fmt.Errorf("variable %q: %w", t.name, err)
			}
			b.WriteString("(?P<v" + strconv.Itoa(len(g.names)) + ">" + expr + ")")
			g.names = append(g.names, t.name)
		default:
			b.WriteString(regexp.QuoteMeta(t.lit))
		}
	}
	b.WriteString("$")
	re, maxInput, err := sp.compile(b.String())
	if err != nil {
		return segment{}, err
	}
	g.re, g.maxInput = re, maxInput
	for i := range g.names {
		g.groups = append(g.groups, re.SubexpIndex("v"+strconv.Itoa(i)))
	}
	return g, nil
}

func (sp *segmentParser) compile(expr string) (*regexp.Regexp, int, error) {
	if sp.fold {
		expr = "(?i)" + expr
	}
	return args.CompileRegexp(expr)
}

// compileAnchored compiles expr so that it must match a whole string. Its
// error names the problem in expr itself, not in the wrapped expression.
// maxInput is the longest value it may be run on (args.MatchBudget).
func compileAnchored(expr string, fold bool) (re *regexp.Regexp, maxInput int, err error) {
	if err := checkRegexp(expr); err != nil {
		return nil, 0, err
	}
	full := "^(?:" + expr + ")$"
	if fold {
		full = "(?i)" + full
	}
	return args.CompileRegexp(full)
}

// checkRegexp reports whether expr is a valid regexp, with a short error.
func checkRegexp(expr string) error {
	_, err := syntax.Parse(expr, syntax.Perl)
	if err == nil {
		return nil
	}
	var perr *syntax.Error
	if errors.As(err, &perr) {
		if perr.Expr == expr || perr.Expr == "" {
			return fmt.Errorf("invalid regexp: %s", perr.Code)
		}
		return fmt.Errorf("invalid regexp: %s: %q", perr.Code, perr.Expr)
	}
	return err
}
