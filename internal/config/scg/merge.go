package scg

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// mergeDocument applies the mapping over on top of base, as Spring Boot
// applies the document of an active profile over the first: the same
// property (under relaxed binding, however its key is spelled or dotted)
// takes the later value, a list replaces the whole list, mappings merge.
// The nodes keep their positions in the file.
func mergeDocument(base, over *yaml.Node) *yaml.Node {
	m := &mnode{}
	m.add(base, 0)
	m.add(over, 0)
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: base.Line, Column: base.Column}
	m.entries(out, "")
	return out
}

// mnode is a property group while documents are merged.
type mnode struct {
	ids   []string          // children in order, by id (canonical, or the bracketed key as written)
	names map[string]string // id → the key as written (bracketed if it holds dots)
	keys  map[string]*yaml.Node
	kids  map[string]*mnode
	value *yaml.Node // a scalar or a list; a group may have one too (logging.level.a beside a.b)
}

// profileKeys are the properties that select a profile's document: they
// are not merged into the first one.
var profileKeys = map[string]bool{"spring.config.activate.onprofile": true, "spring.profiles": true}

func (m *mnode) add(n *yaml.Node, depth int) { m.addAt(n, "", depth) }

func (m *mnode) addAt(n *yaml.Node, path string, depth int) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode || depth > 64 {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Value == "<<" { // a YAML merge key: its mappings' properties
			if v.Kind == yaml.SequenceNode {
				for _, it := range v.Content {
					m.addAt(it, path, depth+1)
				}
			} else {
				m.addAt(v, path, depth+1)
			}
			continue
		}
		cur, p := m, path
		segs := splitRaw(k.Value)
		full := path
		for _, seg := range segs {
			id, _ := segID(seg)
			full = join(full, id)
		}
		if profileKeys[full] {
			continue
		}
		for j, seg := range segs {
			id, name := segID(seg)
			p = join(p, id)
			cur = cur.child(id, name, k)
			if j < len(segs)-1 {
				continue
			}
			switch {
			case v.Kind == yaml.MappingNode:
				if cur.value != nil && cur.value.Kind == yaml.SequenceNode {
					cur.value = nil
				}
				cur.addAt(v, p, depth+1)
			case v.Kind == yaml.SequenceNode:
				cur.value, cur.ids, cur.kids = v, nil, nil // a list replaces the whole list
			default:
				cur.value = v
			}
		}
	}
}

func (m *mnode) child(id, name string, key *yaml.Node) *mnode {
	if m.kids == nil {
		m.kids, m.names, m.keys = map[string]*mnode{}, map[string]string{}, map[string]*yaml.Node{}
	}
	if c := m.kids[id]; c != nil {
		return c
	}
	c := &mnode{}
	m.kids[id], m.names[id], m.keys[id] = c, name, key
	m.ids = append(m.ids, id)
	return c
}

// entries writes m's properties into out, their keys prefixed with prefix.
func (m *mnode) entries(out *yaml.Node, prefix string) {
	for _, id := range m.ids {
		c, at := m.kids[id], m.keys[id]
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: prefix + m.names[id], Line: at.Line, Column: at.Column}
		switch {
		case len(c.ids) == 0 && c.value != nil:
			out.Content = append(out.Content, key, c.value)
		case c.value != nil: // a value and properties below it: dotted keys beside it
			out.Content = append(out.Content, key, c.value)
			c.entries(out, key.Value+".")
		default:
			sub := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column}
			c.entries(sub, "")
			out.Content = append(out.Content, key, sub)
		}
	}
}

// splitRaw splits a YAML key on dots outside brackets, keeping the brackets.
func splitRaw(k string) []string {
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
				segs = append(segs, k[start:i])
				start = i + 1
			}
		}
	}
	return append(segs, k[start:])
}

// segID is the identity of a key segment for merging (relaxed, unless it
// is a bracketed map key, which is kept as written) and how to write it.
func segID(seg string) (id, name string) {
	if strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]") {
		return seg, seg
	}
	return canonical(seg), seg
}
