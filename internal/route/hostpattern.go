package route

import (
	"errors"
	"fmt"
	"strings"
)

// A hostPattern is one compiled Ant-style host pattern ("." separates
// labels): "*.example.com", "**.example.com", "{sub}.example.com".
// Matching is case-insensitive.
type hostPattern struct {
	raw  string
	segs []segment
}

func compileHostPattern(raw string, withPort bool) (*hostPattern, error) {
	if raw == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	s := raw
	if !withPort {
		// A port in the pattern is ignored, as it is in the request.
		s = strings.TrimSuffix(normalizeHostPattern(raw), ".")
	}
	parts, err := splitPattern(s, '.')
	if err != nil {
		return nil, err
	}
	h := &hostPattern{raw: raw}
	sp := segmentParser{fold: true}
	for _, part := range parts {
		switch {
		case part == "":
			return nil, fmt.Errorf(`empty label ("..")`)
		case part == "**":
			if n := len(h.segs); n > 0 && h.segs[n-1].kind == segMulti {
				continue // "**.**" is "**"
			}
			h.segs = append(h.segs, segment{kind: segMulti})
		default:
			g, err := sp.segment(part)
			if err != nil {
				return nil, err
			}
			h.segs = append(h.segs, g)
		}
	}
	return h, nil
}

// normalizeHostPattern drops a ":port" outside of {...}.
func normalizeHostPattern(p string) string {
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ':':
			if depth == 0 {
				return p[:i]
			}
		}
	}
	return p
}

func (h *hostPattern) match(host string, vars *Vars) bool {
	return matchLabels(h.segs, host, vars)
}

// matchLabels matches segs against the labels of host; host == "" means no
// labels are left.
func matchLabels(segs []segment, host string, vars *Vars) bool {
	for len(segs) > 0 {
		g := &segs[0]
		segs = segs[1:]
		if g.kind == segMulti {
			if len(segs) == 0 {
				return true
			}
			for {
				n := vars.n
				if matchLabels(segs, host, vars) {
					return true
				}
				vars.n = n
				if host == "" {
					return false
				}
				_, host, _ = cutLabel(host)
			}
		}
		if host == "" {
			return false
		}
		label, rest, _ := cutLabel(host)
		if !g.match(label, vars) {
			return false
		}
		host = rest
	}
	return host == ""
}

func cutLabel(host string) (label, rest string, ok bool) {
	return strings.Cut(host, ".")
}

// hostPredicate is Host: any of its patterns matches Input.Host, or
// Input.HostPort when withPort.
type hostPredicate struct {
	patterns []*hostPattern
	withPort bool
}

// maxHostLen is the longest DNS name. Longer hosts match no pattern, which
// also bounds the backtracking of patterns with several "**".
const maxHostLen = 253

func (p *hostPredicate) Match(in *Input) bool {
	host := in.Host
	if p.withPort {
		host = in.HostPort
	}
	if len(host) > maxHostLen+6 { // ":65535"
		return false
	}
	for _, pat := range p.patterns {
		n := in.Vars.n
		if pat.match(host, &in.Vars) {
			return true
		}
		in.Vars.n = n
	}
	return false
}

func newHost(patterns []string, withPort bool) (Predicate, error) {
	if len(patterns) == 0 {
		return nil, errors.New("patterns: required")
	}
	p := &hostPredicate{withPort: withPort}
	for _, raw := range patterns {
		pat, err := compileHostPattern(raw, withPort)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", raw, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}
