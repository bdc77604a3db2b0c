package route

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A pathPattern is one compiled Spring PathPattern.
type pathPattern struct {
	raw  string
	segs []segment
	// tail is what follows segs: tailNone (the path must end, or end in "/"
	// when the pattern does), tailAny ("**") or tailCapture ("{*name}").
	tail     tailKind
	tailName string
	// slash: the pattern ends in "/", so the path must too.
	slash bool
	// optionalSlash: "/a/b" also matches "/a/b/" (matchTrailingSlash).
	optionalSlash bool
}

type tailKind uint8

const (
	tailNone tailKind = iota
	tailAny
	tailCapture
)

// compilePathPattern parses a Spring PathPattern. A missing leading "/" is
// added, as Spring's PathPatternParser.initFullPathPattern does.
func compilePathPattern(raw string, matchTrailingSlash bool) (*pathPattern, error) {
	p := &pathPattern{raw: raw, optionalSlash: matchTrailingSlash}
	body := strings.TrimPrefix(raw, "/")
	if body == "" {
		p.slash = true
		return p, nil
	}
	parts, err := splitPattern(body, '/')
	if err != nil {
		return nil, err
	}
	if parts[len(parts)-1] == "" {
		p.slash = true
		parts = parts[:len(parts)-1]
	}
	sp := segmentParser{}
	for i, s := range parts {
		last := i == len(parts)-1
		switch {
		case s == "":
			return nil, errors.New(`empty segment ("//")`)
		case isDotSegment(s):
			return nil, fmt.Errorf("%q segment (request paths are cleaned, so it never matches)", s)
		case strings.IndexByte(s, ';') >= 0:
			return nil, fmt.Errorf(`";" in segment %q (";params" are ignored when matching)`, s)
		case s == "**":
			if !last || p.slash {
				return nil, errors.New(`"**" must be the last segment`)
			}
			p.tail = tailAny
		case strings.HasPrefix(s, "{*"):
			name, ok := strings.CutSuffix(s[2:], "}")
			if !ok || strings.ContainsAny(name, "{}") {
				return nil, fmt.Errorf(`%q: "{*name}" is only allowed as the whole last path segment`, s)
			}
			if !last || p.slash {
				return nil, fmt.Errorf(`"{*%s}" must be the last segment`, name)
			}
			if err := sp.addName(name); err != nil {
				return nil, err
			}
			p.tail, p.tailName = tailCapture, name
		default:
			g, err := sp.segment(s)
			if err != nil {
				return nil, err
			}
			p.segs = append(p.segs, g)
		}
	}
	return p, nil
}

// match reports whether path (clean, starting with "/") matches, adding the
// captured variables to vars. On failure vars may hold partial captures.
func (p *pathPattern) match(path string, vars *Vars) bool {
	rest := path
	for i := range p.segs {
		if rest == "" || rest[0] != '/' {
			return false
		}
		var seg string
		seg, rest = nextSegment(rest[1:])
		g := &p.segs[i]
		if seg == "" && g.kind == segAny && i == len(p.segs)-1 && rest == "" && p.tail == tailNone && !p.slash {
			continue // Spring: a final "*" also matches an empty last segment
		}
		if !g.match(seg, vars) {
			return false
		}
	}
	switch p.tail {
	case tailAny:
		return true
	case tailCapture:
		vars.add(p.tailName, rest)
		return true
	}
	if p.slash {
		return rest == "/"
	}
	return rest == "" || rest == "/" && p.optionalSlash
}

// nextSegment splits s, a path without its leading "/", into its first
// segment and the rest (which starts with "/" or is empty). The segment
// loses its ";params", as in Spring and servlet containers:
// "/users;jsessionid=1" matches "/users". A byte loop beats IndexByte on
// segments this short.
func nextSegment(s string) (seg, rest string) {
	end, semi := len(s), -1
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' {
			end = i
			break
		} else if c == ';' && semi < 0 {
			semi = i
		}
	}
	if semi >= 0 {
		return s[:semi], s[end:]
	}
	return s[:end], s[end:]
}

// firstLiteral returns the first segment of every path the pattern can match,
// if the pattern fixes it.
func (p *pathPattern) firstLiteral() (string, bool) {
	switch {
	case len(p.segs) > 0 && p.segs[0].kind == segLiteral:
		return p.segs[0].text, true
	case len(p.segs) == 0 && p.tail == tailNone: // "/"
		return "", true
	}
	return "", false
}

// firstSegment returns the first segment of a clean path, as the Table
// indexes it.
func firstSegment(path string) string {
	seg, _ := nextSegment(strings.TrimPrefix(path, "/"))
	return seg
}

// pathPredicate is Path: any of its patterns matches Input.Path.
type pathPredicate struct {
	patterns []*pathPattern
}

func (p *pathPredicate) Match(in *Input) bool {
	for _, pat := range p.patterns {
		n := in.Vars.n
		if pat.match(in.Path, &in.Vars) {
			return true
		}
		in.Vars.n = n
	}
	return false
}

// firstLiterals returns the first segments of every path p can match, or
// false if some pattern does not fix it.
func (p *pathPredicate) firstLiterals() ([]string, bool) {
	var keys []string
	for _, pat := range p.patterns {
		k, ok := pat.firstLiteral()
		if !ok {
			return nil, false
		}
		keys = append(keys, k)
	}
	return keys, true
}

func newPath(patterns []string, matchTrailingSlash string) (Predicate, error) {
	slash := true
	if matchTrailingSlash != "" {
		b, err := strconv.ParseBool(matchTrailingSlash)
		if err != nil {
			return nil, fmt.Errorf("matchTrailingSlash %q is not true or false", matchTrailingSlash)
		}
		slash = b
	} else if n := len(patterns); n > 1 {
		// Spring's GATHER_LIST_TAIL_FLAG: "Path=/a,/b,false".
		if flag := patterns[n-1]; strings.EqualFold(flag, "true") || strings.EqualFold(flag, "false") {
			slash, patterns = strings.EqualFold(flag, "true"), patterns[:n-1]
		}
	}
	if len(patterns) == 0 {
		return nil, errors.New("patterns: required")
	}
	p := &pathPredicate{}
	for _, raw := range patterns {
		pat, err := compilePathPattern(raw, slash)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", raw, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}
