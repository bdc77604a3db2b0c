package scg

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A prop is one Spring property, or a group of them, as written. Dotted keys
// ("cloud.gateway:") are split into one prop per segment, so that the same
// property can be found however it was spelled; a key in brackets ("[/**]")
// is one segment, kept as written.
//
// The converter marks each prop it reads as used; every leaf left unused is
// reported at the end, so nothing in the file is dropped silently.
type prop struct {
	name  string     // the segment as written, brackets removed
	path  string     // Spring property path as written, like spring.cloud.gateway.routes[0].id
	key   *yaml.Node // the key that introduced the prop; the value for a list item
	value *yaml.Node // the value, aliases resolved; an empty mapping for a segment of a dotted key
	kids  []*prop    // for a mapping, in file order
	items []*prop    // for a list
	used  bool
	// filled: value was written in the file (not only made for a segment
	// of a dotted key). A filled scalar may have kids too: Spring reads
	// logging.level.a and logging.level.a.b as two properties.
	filled bool
}

// canonical is Spring's relaxed form of a property name: max-idle-time,
// maxIdleTime, max_idle_time and MAX_IDLE_TIME are one property.
func canonical(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '-' || c == '_':
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// newTree builds the prop tree of the mapping root. Keys that collide under
// relaxed binding are reported with report.
func newTree(root *yaml.Node, report func(n *yaml.Node, path, format string, a ...any)) *prop {
	top := &prop{key: root, value: root}
	b := &builder{report: report, budget: maxProps}
	b.fill(top, root, 0)
	return top
}

// maxProps bounds the props of one file: aliases could otherwise make a
// small file expand into billions of values.
const maxProps = 100_000

type builder struct {
	report func(n *yaml.Node, path, format string, a ...any)
	budget int
}

func (b *builder) fill(p *prop, n *yaml.Node, depth int) {
	n = resolve(n)
	p.value = n
	p.filled = true
	b.budget--
	switch {
	case b.budget == 0:
		b.report(n, p.path, "too many values (aliases expanding?)")
		return
	case b.budget < 0:
		return
	case depth > 64:
		b.report(n, p.path, "nested too deeply")
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
	pairs:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				b.report(k, p.path, "expected a string key")
				continue
			}
			if k.Value == "<<" {
				b.report(k, p.path, "merge keys (<<) are not supported in an imported file")
				continue
			}
			parent := p
			segs := splitKey(k.Value)
			for i, seg := range segs {
				last := i == len(segs)-1
				child := parent.kid(seg)
				switch {
				case child == nil:
					// Until a value is filled in, a segment of a dotted key is an empty mapping.
					child = &prop{name: seg, path: join(parent.path, seg), key: k,
						value: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: k.Line, Column: k.Column}}
					parent.kids = append(parent.kids, child)
				case !last && child.isScalar():
					// a.b: 1 and a.b.c: 2 are two properties; go on below a.b.
				case last && resolve(v).Kind == yaml.ScalarNode && !child.filled:
					// a.b.c: 2 and then a.b: 1: the same, the other way round.
				case child.value.Kind != yaml.MappingNode,
					last && resolve(v).Kind != yaml.MappingNode:
					b.report(k, child.path, "duplicate property (first at line %d)", child.key.Line)
					continue pairs
				}
				if last {
					b.fill(child, v, depth+1)
				}
				parent = child
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			c := &prop{name: fmt.Sprint(i), path: fmt.Sprintf("%s[%d]", p.path, i), key: resolve(item)}
			b.fill(c, item, depth+1)
			p.items = append(p.items, c)
		}
	}
}

// splitKey splits a YAML key on dots outside brackets and removes the brackets.
func splitKey(k string) []string {
	var segs []string
	depth, start := 0, 0
	for i := 0; i < len(k); i++ {
		switch k[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				segs = append(segs, unbracket(k[start:i]))
				start = i + 1
			}
		}
	}
	return append(segs, unbracket(k[start:]))
}

func unbracket(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}

func join(path, seg string) string {
	if path == "" {
		return seg
	}
	return path + "." + seg
}

// kid returns the child named name under relaxed binding, or nil.
func (p *prop) kid(name string) *prop {
	if p == nil {
		return nil
	}
	c := canonical(name)
	for _, k := range p.kids {
		if canonical(k.name) == c {
			return k
		}
	}
	return nil
}

// get returns the prop at the dotted path under p, or nil.
func (p *prop) get(path string) *prop {
	for seg := range strings.SplitSeq(path, ".") {
		p = p.kid(seg)
	}
	return p
}

// isScalar reports whether p holds one value.
func (p *prop) isScalar() bool { return p.value != nil && p.value.Kind == yaml.ScalarNode }

// isNull reports whether p was written without a value.
func (p *prop) isNull() bool { return p.isScalar() && p.value.ShortTag() == "!!null" }

// markAll marks p and everything under it as used.
func (p *prop) markAll() {
	p.used = true
	for _, k := range p.kids {
		k.markAll()
	}
	for _, it := range p.items {
		it.markAll()
	}
}

// unused calls f for each leaf under p that was not used, and for each list
// of scalars not used, in file order.
func (p *prop) unused(f func(*prop)) {
	if p.used {
		return
	}
	switch {
	case len(p.kids) > 0:
		if p.isScalar() && p.filled {
			f(p) // a value beside the properties below it
		}
		for _, k := range p.kids {
			k.unused(f)
		}
	case len(p.items) > 0 && p.items[0].value.Kind == yaml.MappingNode:
		for _, it := range p.items {
			it.unused(f)
		}
	default:
		f(p)
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}
