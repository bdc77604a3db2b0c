package scg

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/config"
)

// A .properties file holds the same properties as an application.yml, one
// per line, with java.util.Properties' syntax (which Spring Boot reads):
// key=value, key: value or key value; # and ! start comments; a line ending
// in an odd number of backslashes continues on the next; \t \n \r \f
// \uXXXX and \c (c itself) are escapes. Lists are written with indices
// (routes[0].id=a), map keys that hold dots in brackets (cors-configurations.[/**].allowed-origins).
// A line #--- or !--- starts a new document (Spring Boot 2.4).
//
// propertiesDocuments parses data into the YAML documents it stands for,
// with each key and value placed at its line, so that the converter reads
// both kinds of file alike.
func propertiesDocuments(file string, data []byte) ([]*yaml.Node, error) {
	if !utf8.Valid(data) {
		return nil, config.Errors{{File: file, Line: 1, Col: 1, Msg: "not UTF-8 text"}}
	}
	docs := []*propNode{newPropMap(1, 1)}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var errs config.Errors
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "#---" || line == "!---" {
			docs = append(docs, newPropMap(lineNo+1, 1))
			continue
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		col := len(lines[i]) - len(line) + 1
		for endsInEscape(line) && i+1 < len(lines) { // continuation
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		key, value, valueCol := splitProperty(line)
		k, err := unescape(key)
		if err == nil {
			value, err = unescape(value)
		}
		if err == nil {
			err = docs[len(docs)-1].set(k, value, lineNo, col, col+valueCol)
		}
		if err != nil {
			errs = append(errs, &config.Error{File: file, Line: lineNo, Col: col, Path: k, Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out := make([]*yaml.Node, 0, len(docs))
	for i, d := range docs {
		if i > 0 && len(d.keys) == 0 {
			continue
		}
		out = append(out, d.yaml())
	}
	return out, nil
}

func endsInEscape(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits a logical line into its key and value (escapes
// still in), and the value's offset in the line.
func splitProperty(line string) (key, value string, valueAt int) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		i++
	}
	i = min(i, len(line))
	key = line[:i]
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t' || line[j] == '\f') {
		j++
	}
	if j < len(line) && (line[j] == '=' || line[j] == ':') {
		j++
		for j < len(line) && (line[j] == ' ' || line[j] == '\t' || line[j] == '\f') {
			j++
		}
	}
	return key, line[j:], j
}

// unescape applies java.util.Properties' escapes.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uXXXX escape")
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// A propNode is a mapping, a list or a value being built from properties.
type propNode struct {
	line, col       int // of the value
	keyLine, keyCol int
	keys            []string // mapping, in file order
	kids            map[string]*propNode
	items           []*propNode // list, by index
	value           *string
}

func newPropMap(line, col int) *propNode {
	return &propNode{line: line, col: col, kids: map[string]*propNode{}}
}

// maxIndex bounds list indices: routes[100000000]=x must not allocate.
const maxIndex = 10_000

// set puts value at the property key.
func (n *propNode) set(key, value string, line, col, valueCol int) error {
	if key == "" {
		return fmt.Errorf("a property without a name")
	}
	for _, seg := range splitKey(key) { // splitKey unbrackets [x] segments after a dot
		name, idx := seg, []string(nil)
		if !strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]") {
			open := strings.IndexByte(seg, '[')
			if open < 0 {
				return fmt.Errorf("%q: unbalanced brackets", key)
			}
			name = seg[:open]
			for rest := seg[open:]; rest != ""; {
				end := strings.IndexByte(rest, ']')
				if rest[0] != '[' || end < 0 {
					return fmt.Errorf("%q: unbalanced brackets", key)
				}
				if k, err := strconv.Atoi(rest[1:end]); err == nil && (k < 0 || k > maxIndex) {
					return fmt.Errorf("%q: %q is not a list index from 0 to %d", key, rest[1:end], maxIndex)
				}
				idx = append(idx, rest[1:end]) // an index, or a map key (args[pattern]) as Spring binds it
				rest = rest[end+1:]
			}
		}
		n = n.child(name, line, col)
		for _, k := range idx {
			if i, err := strconv.Atoi(k); err == nil {
				n = n.item(i, line, col)
			} else {
				n = n.child(k, line, col)
			}
		}
		if n == nil {
			return fmt.Errorf("%q is both a value and a group of properties", key)
		}
	}
	switch {
	case n.value != nil:
		return fmt.Errorf("duplicate property %q", key)
	case len(n.items) > 0:
		return fmt.Errorf("%q is a list (written with [index]) and a value", key)
	}
	n.value, n.line, n.col = &value, line, valueCol
	return nil
}

func (n *propNode) child(name string, line, col int) *propNode {
	if n == nil || n.items != nil {
		return nil
	}
	if n.kids == nil {
		n.kids = map[string]*propNode{}
	}
	if c := n.kids[name]; c != nil {
		return c
	}
	c := &propNode{line: line, col: col, keyLine: line, keyCol: col}
	n.kids[name] = c
	n.keys = append(n.keys, name)
	return c
}

func (n *propNode) item(k, line, col int) *propNode {
	if n == nil || n.value != nil || len(n.keys) > 0 {
		return nil
	}
	for len(n.items) <= k {
		n.items = append(n.items, nil)
	}
	if n.items[k] == nil {
		n.items[k] = &propNode{line: line, col: col}
	}
	return n.items[k]
}

// yaml builds the YAML node n stands for; a missing list index becomes an
// empty value, which the converter reports.
func (n *propNode) yaml() *yaml.Node {
	switch {
	case n == nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	case n.value != nil && len(n.keys) == 0:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: *n.value, Line: n.line, Column: n.col}
	case n.items != nil:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: n.line, Column: n.col}
		for _, it := range n.items {
			s.Content = append(s.Content, it.yaml())
		}
		return s
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.line, Column: n.col}
	n.entries(m, "")
	return m
}

// entries adds n's properties to m, their keys prefixed with prefix. A
// property that has a value and properties below it (logging.level.a and
// logging.level.a.b) is written as a value and dotted keys beside it.
func (n *propNode) entries(m *yaml.Node, prefix string) {
	for _, k := range n.keys {
		name := k
		if strings.Contains(k, ".") {
			name = "[" + k + "]" // a key with dots, written in brackets
		}
		c := n.kids[k]
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: prefix + name, Line: c.keyLine, Column: c.keyCol}
		if c.value != nil && len(c.keys) > 0 {
			m.Content = append(m.Content, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: *c.value, Line: c.line, Column: c.col})
			c.entries(m, prefix+name+".")
			continue
		}
		m.Content = append(m.Content, key, c.yaml())
	}
}
