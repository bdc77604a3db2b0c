package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/args"
)

// The decoder walks a yaml.Node tree into Go values, driven by yaml struct
// tags. It never stops at the first problem: each one is recorded with its
// position and decoding goes on with the next value.
//
// Decoding rules: a null value (an empty value or ~) leaves the field at its
// default; a struct type with a setDefaults method gets its defaults when
// created; a type implementing nodeUnmarshaler decodes itself; a field tagged
// `yaml:"name,size"` is a byte size.
type decoder struct {
	file string
	errs Errors
	// at maps the path of every value decoded to its position: the validator
	// uses it to place its messages and to tell a default from a value that
	// was written.
	at map[string]Pos
	// failed holds the paths with a problem reported, so that the validator
	// does not report a second one.
	failed map[string]bool
}

// nodeUnmarshaler is implemented by types that decode themselves.
type nodeUnmarshaler interface {
	unmarshalNode(d *decoder, n *yaml.Node, path string)
}

// defaulter is implemented by types with defaults other than zero values.
type defaulter interface {
	setDefaults()
}

// locator is implemented by types that remember where they were written.
type locator interface {
	setLoc(p Pos, path string)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	anyMapType   = reflect.TypeFor[map[string]any]()
)

func newDecoder(file string) *decoder {
	return &decoder{file: file, at: map[string]Pos{}, failed: map[string]bool{}}
}

// errorf reports a problem with the value at path.
func (d *decoder) errorf(p Pos, path, format string, a ...any) {
	d.errs = append(d.errs, newError(d.file, p, path, format, a...))
	d.failed[path] = true
}

// keyErrorf reports a problem with a key of the mapping at path, which does
// not make the mapping's value wrong.
func (d *decoder) keyErrorf(p Pos, path, format string, a ...any) {
	d.errs = append(d.errs, newError(d.file, p, path, format, a...))
}

// parse decodes and validates data. The Config is complete only if d.errs is empty.
func (d *decoder) parse(data []byte) *Config {
	c := defaultConfig()
	c.File = d.file
	if d.tooLarge(len(data)) {
		return c
	}
	root, ok := d.document(data)
	if !ok || root != nil && d.tooManyNodes(root) {
		return c
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	d.validate(c)
	return c
}

// document returns the root node of the single YAML document in data, or nil
// for an empty file. It reports false if data is not well-formed YAML.
func (d *decoder) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.yamlError(err, data)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(err, data)
		return nil, false
	default:
		d.errorf(pos(&next), "", "yaml: a config file holds one document, found a second")
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced`)
)

// yamlParserProblems are the messages of the YAML parser (not its scanner),
// whose line numbers are one less than the line of the problem.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError reports a syntax error. The YAML library gives only a line, so
// the column is 1, except for an unknown anchor, which is found in data.
func (d *decoder) yamlError(err error, data []byte) {
	msg := err.Error()
	p := Pos{Line: 1, Col: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = "yaml: " + msg[len(m[0]):]
		if yamlParserProblems[strings.TrimPrefix(msg, "yaml: ")] {
			p.Line++
		}
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			p.Line = 1 + bytes.Count(data[:i], []byte("\n"))
			p.Col = 1 + i - (bytes.LastIndexByte(data[:i], '\n') + 1)
		}
	}
	d.errorf(p, "", "%s", strings.ReplaceAll(msg, "\n", " "))
}

// decode stores n in v, which must be addressable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.enter(n, path)
	if !ok {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(newValue(v.Type()))
		}
		v = v.Elem()
	}
	if l, ok := v.Addr().Interface().(locator); ok {
		l.setLoc(pos(n), path)
	}
	if u, ok := v.Addr().Interface().(nodeUnmarshaler); ok {
		u.unmarshalNode(d, n, path)
		return
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, path)
		return
	case prefixType:
		d.prefix(n, v, path)
		return
	case anyMapType:
		d.anyMap(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if s, ok := d.str(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		d.boolean(n, v, path)
	case reflect.Int, reflect.Int64:
		d.integer(n, v, path)
	case reflect.Float64:
		d.float(n, v, path)
	default:
		panic("config: cannot decode into " + v.Type().String())
	}
}

// enter resolves aliases and records the position of n at path. It reports
// false for a null value, which leaves the target untouched.
func (d *decoder) enter(n *yaml.Node, path string) (*yaml.Node, bool) {
	n = resolve(n)
	if isNull(n) {
		return n, false
	}
	d.at[path] = pos(n)
	return n, true
}

// newValue returns a new addressable value of type t, with its defaults set.
// For a pointer type, it points to a new value.
func newValue(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	p := v.Addr()
	if t.Kind() == reflect.Pointer {
		v.Set(reflect.New(t.Elem()))
		p = v
	}
	if df, ok := p.Interface().(defaulter); ok {
		df.setDefaults()
	}
	return v
}

type field struct {
	index int
	size  bool
}

// fields returns the yaml-tagged fields of struct type t, and their keys in order.
func fields(t reflect.Type) (map[string]field, []string) {
	m := map[string]field{}
	var keys []string
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("yaml")
		if !ok || tag == "-" {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		m[name] = field{index: i, size: opt == "size"}
		keys = append(keys, name)
	}
	return m, keys
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	fs, keys := fields(v.Type())
	for _, kv := range d.pairs(n, path, 0) {
		f, ok := fs[kv.key.Value]
		if !ok {
			d.unknownKey(kv.key, path, keys)
			continue
		}
		p := join(path, kv.key.Value)
		if f.size {
			d.size(kv.value, v.Field(f.index), p)
		} else {
			d.decode(kv.value, v.Field(f.index), p)
		}
	}
}

func (d *decoder) unknownKey(k *yaml.Node, path string, known []string) {
	if s := Suggest(k.Value, known); s != "" {
		d.keyErrorf(pos(k), path, "unknown key %q (did you mean %s?)", k.Value, s)
		return
	}
	d.keyErrorf(pos(k), path, "unknown key %q", k.Value)
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(pos(n), path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if item := resolve(item); isNull(item) {
			d.errorf(pos(item), p, "empty list item")
			continue
		}
		e := newValue(v.Type().Elem())
		d.decode(item, e, p)
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

// mapping decodes a map with string keys; the path of an entry is "path.key".
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, path, 0) {
		p := join(path, kv.key.Value)
		e := newValue(v.Type().Elem())
		d.decode(kv.value, e, p)
		if l, ok := e.Interface().(locator); ok {
			l.setLoc(pos(kv.key), p) // an entry is where its name is
		}
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), e)
	}
	v.Set(m)
}

type pair struct{ key, value *yaml.Node }

// maxMergeDepth bounds merges of merges, which may also form a cycle.
const maxMergeDepth = 8

// pairs returns the entries of mapping n, with merge keys (<<) expanded: keys
// written in n win over merged ones, and earlier merged mappings win over
// later ones. Keys that are not strings and duplicate keys are reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge":
			merged = append(merged, d.merge(v, path, depth)...)
		case k.Kind != yaml.ScalarNode || isNull(k):
			d.keyErrorf(pos(k), path, "expected a string key, got %s", describe(k))
		case seen[k.Value] != nil:
			d.keyErrorf(pos(k), path, "duplicate key %q (first at line %d)", k.Value, seen[k.Value].Line)
		default:
			seen[k.Value] = k
			own = append(own, pair{k, v})
		}
	}
	for _, kv := range merged {
		if seen[kv.key.Value] == nil {
			seen[kv.key.Value] = kv.key
			own = append(own, kv)
		}
	}
	return own
}

func (d *decoder) merge(v *yaml.Node, path string, depth int) []pair {
	v = resolve(v)
	if depth >= maxMergeDepth {
		d.errorf(pos(v), path, "merges (<<) are nested too deeply")
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var all []pair
		for _, m := range v.Content {
			if m := resolve(m); m.Kind != yaml.MappingNode {
				d.errorf(pos(m), path, "a merge (<<) takes a mapping or a list of mappings, got %s", describe(m))
				continue
			}
			all = append(all, d.pairs(resolve(m), path, depth+1)...)
		}
		return all
	}
	d.errorf(pos(v), path, "a merge (<<) takes a mapping or a list of mappings, got %s", describe(v))
	return nil
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(pos(n), path, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errorf(pos(n), path, "expected true or false, got %s", describe(n))
		return
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	v.SetBool(b)
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	var i int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
		d.errorf(pos(n), path, "expected an integer, got %s", describe(n))
		return
	}
	v.SetInt(i)
}

func (d *decoder) float(n *yaml.Node, v reflect.Value, path string) {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil {
		d.errorf(pos(n), path, "expected a number, got %s", describe(n))
		return
	}
	v.SetFloat(f)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(pos(n), path, "%q is not a duration (like 500ms or 30s)", s)
	case t < 0:
		d.errorf(pos(n), path, "%q must not be negative", s)
	default:
		v.SetInt(int64(t))
	}
}

func (d *decoder) size(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.enter(n, path)
	if !ok {
		return
	}
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	b, err := args.ParseSizeSI(s)
	if err != nil {
		d.errorf(pos(n), path, "%q is not a size (like 65536, 64KiB or 10MB)", s)
		return
	}
	if v.Kind() == reflect.Pointer { // optional: nil when not written
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	v.SetInt(b)
}

func (d *decoder) prefix(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	p, err := parsePrefix(s)
	if err != nil {
		d.errorf(pos(n), path, "%q is not an IP address or CIDR prefix (like 10.0.0.0/8)", s)
		return
	}
	v.Set(reflect.ValueOf(p))
}

// parsePrefix parses a CIDR prefix, masked, or a single IP as a full-length prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad IP %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// anyMap decodes a free-form mapping, like metadata, with YAML's own rules.
func (d *decoder) anyMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), path, "expected a mapping, got %s", describe(n))
		return
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		var te *yaml.TypeError
		msg := err.Error()
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		d.errorf(pos(n), path, "%s", strings.ReplaceAll(msg, "\n", " "))
		return
	}
	v.Set(reflect.ValueOf(m))
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names the kind of n for messages, like "a list".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "the number " + n.Value
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an alias"
}

// Suggest returns the element of known closest to s, ignoring case, if
// within edit distance 2; else "". It backs the "did you mean" hints.
func Suggest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(s), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
