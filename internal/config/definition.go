package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/args"
)

var definitionNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// unmarshalNode decodes either spelling of a predicate or filter:
//
//	"Name=a, b"                              # shortcut: Positional ["a", "b"]
//	{name: Name, args: {k: v, l: [a, b]}}    # expanded: Named {"k": ["v"], "l": ["a", "b"]}
//
// A nested mapping in args is flattened one level: {backoff: {base: 10ms}}
// becomes Named {"backoff.base": ["10ms"]}.
func (def *Definition) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		spec, err := parseShortcut(n.Value)
		if err != nil {
			d.errorf(pos(n), path, "%q: %v", n.Value, err)
			return
		}
		def.Spec = spec
	case yaml.MappingNode:
		hasName := false
		for _, kv := range d.pairs(n, path, 0) {
			switch kv.key.Value {
			case "name":
				v, ok := d.enter(kv.value, path+".name")
				if !ok {
					continue
				}
				hasName = true
				if name, ok := d.str(v, path+".name"); ok {
					if err := checkName(name); err != nil {
						d.errorf(pos(v), path+".name", "%v", err)
					}
					def.Name = name
				}
			case "args":
				def.Named = d.namedArgs(kv.value, path+".args")
			default:
				d.unknownKey(kv.key, path, []string{"name", "args"})
			}
		}
		if !hasName {
			d.errorf(pos(n), path, `missing required key "name"`)
		}
	default:
		d.errorf(pos(n), path, "expected a string (Name=arg,...) or a mapping {name, args}, got %s", describe(n))
	}
}

// parseShortcut parses "Name=a, b": the values after the first "=" are split
// on commas and trimmed of spaces.
func parseShortcut(s string) (args.Spec, error) {
	name, rest, hasArgs := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return args.Spec{}, err
	}
	spec := args.Spec{Name: name}
	if hasArgs && strings.TrimSpace(rest) != "" {
		for v := range strings.SplitSeq(rest, ",") {
			spec.Positional = append(spec.Positional, strings.TrimSpace(v))
		}
	}
	return spec, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("missing name")
	case !definitionNameRE.MatchString(name):
		return fmt.Errorf("name %q must be letters and digits, starting with a letter", name)
	}
	return nil
}

// namedArgs decodes the args of the expanded spelling.
func (d *decoder) namedArgs(n *yaml.Node, path string) map[string][]string {
	n, ok := d.enter(n, path)
	if !ok {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), path, "expected a mapping, got %s", describe(n))
		return nil
	}
	named := map[string][]string{}
	d.flattenArgs(n, path, "", named)
	return named
}

func (d *decoder) flattenArgs(n *yaml.Node, path, prefix string, named map[string][]string) {
	for _, kv := range d.pairs(n, path, 0) {
		key, p := prefix+kv.key.Value, path+"."+kv.key.Value
		v, ok := d.enter(kv.value, p)
		if !ok {
			continue
		}
		switch v.Kind {
		case yaml.ScalarNode:
			named[key] = []string{v.Value}
		case yaml.SequenceNode:
			values := []string{}
			for i, item := range v.Content {
				if s, ok := d.str(resolve(item), fmt.Sprintf("%s[%d]", p, i)); ok {
					values = append(values, s)
				}
			}
			named[key] = values
		case yaml.MappingNode:
			if prefix != "" {
				d.errorf(pos(v), p, "nested mappings are supported one level deep")
				continue
			}
			d.flattenArgs(v, p, key+".", named)
		}
	}
}
