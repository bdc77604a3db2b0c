// Package scg imports a Spring Cloud Gateway application.yml: it converts
// the gateway's properties (routes, default filters, global CORS, the HTTP
// client's timeouts and pool, server.port, Redis) into Sluice's native
// config, as a YAML document whose nodes keep the positions of the Spring
// file, so that every later problem is reported where the user wrote it.
//
// Nothing is dropped silently. Every property of the file is either
// converted or listed, as FILE:LINE:COL: spring.property.path: message, in
// one of two lists: Errors, the parts Sluice cannot reproduce (running
// without them would route, filter or secure requests differently), and
// Warnings, the parts that do not change how requests are handled (logging,
// management, the application name, tuning Sluice does its own way).
//
// docs/spring-import.md lists what maps to what.
package scg

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/config"
)

// Env looks up an environment variable, like os.LookupEnv.
type Env func(name string) (string, bool)

// Result is a converted file.
type Result struct {
	// Native is Sluice's config: a YAML mapping whose nodes hold positions
	// in the Spring file. Marshal it for a native config file.
	Native *yaml.Node
	// Errors are the parts of the file Sluice cannot reproduce.
	Errors config.Errors
	// Warnings are the parts left out that do not change how requests are handled.
	Warnings config.Errors

	// ServiceList, when the discovery locator is on, is the native
	// discovery block of the registry whose services get a route (its
	// service is a placeholder); ServiceListPath is where the file
	// configures that registry.
	ServiceList     *yaml.Node
	ServiceListPath string
	// Locator, when the discovery locator is on, says that a native config
	// cannot hold its routes: `sluice convert scg` lists it as an error.
	Locator *config.Error

	paths    map[string]string // native path → Spring property path
	reported map[string]bool   // native paths whose problems Errors already holds
}

// IsSpring reports whether data is a Spring Boot configuration: a YAML
// mapping with a top-level spring key (spring: or spring.…:), or a
// .properties file with a spring.… property.
func IsSpring(data []byte) bool {
	var doc yaml.Node
	if yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return isSpringProperties(data)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && canonical(splitKey(k.Value)[0]) == "spring" {
			return true
		}
	}
	return false
}

// Convert converts the Spring file data (named file in messages), resolving
// placeholders with env. The error, config.Errors, is for a file that is not
// well-formed YAML or not a mapping; every other problem is in the Result.
func Convert(file string, data []byte, env Env) (*Result, error) {
	return ConvertServices(file, data, env, nil)
}

// ConvertServices is Convert with the services the registry lists, for the
// routes of the discovery locator (none without).
func ConvertServices(file string, data []byte, env Env, services []string) (*Result, error) {
	docs := documents
	if isPropertiesFile(file, data) {
		docs = properties
	}
	root, extra, err := docs(file, data)
	if err != nil {
		return nil, err
	}
	c := &converter{
		file: file,
		env:  env,
		res:  &Result{paths: map[string]string{}, reported: map[string]bool{}},
		ups:  map[string]*upstream{},

		services: services,
	}
	root, extra = c.applyProfiles(root, extra)
	c.root = newTree(root, func(n *yaml.Node, path, format string, a ...any) { c.errorf(n, path, format, a...) })
	c.convert()
	for _, d := range extra {
		c.extraDocument(d)
	}
	sortErrors(c.res.Errors)
	sortErrors(c.res.Warnings)
	return c.res, nil
}

// Marshal writes r.Native as a native config file.
func (r *Result) Marshal() []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.Encode(r.Native)
	enc.Close()
	return b.Bytes()
}

// Import converts data and parses the result with the config package. Like
// config.ParseAll, it returns the Config as far as it could be built even
// when errs is not empty, so that later checks can still run; the Config
// must not be run then. Paths in errs and in the Config (Route.Path,
// Definition.Path, Upstream.Path) are Spring property paths.
func Import(file string, data []byte, env Env) (cfg *config.Config, errs, warnings config.Errors) {
	return ImportServices(file, data, env, nil)
}

// ImportServices is Import with the services the registry lists, for the
// routes of the discovery locator; cfg.ServiceList names that registry.
func ImportServices(file string, data []byte, env Env, services []string) (cfg *config.Config, errs, warnings config.Errors) {
	res, err := ConvertServices(file, data, env, services)
	if err != nil {
		var es config.Errors
		errors.As(err, &es)
		return nil, es, nil
	}
	errs = slices.Clone(res.Errors)
	doc := res.Native
	kept := doc.Content[:0:0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if !nativeKeys()[k.Value] {
			errs = append(errs, &config.Error{File: file, Line: v.Line, Col: v.Column, Path: res.SpringPath(k.Value),
				Msg: "not supported by this build of Sluice: its config has no " + strconv.Quote(k.Value) + " block"})
			continue
		}
		kept = append(kept, k, v)
	}
	cfg, perrs := config.ParseNode(file, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: doc.Line, Column: doc.Column, Content: kept})
	for _, e := range perrs {
		if !res.covered(e.Path) {
			e.Path = res.SpringPath(e.Path)
			errs = append(errs, e)
		}
	}
	res.relabel(cfg)
	if res.ServiceList != nil && cfg != nil {
		ds, derrs := config.ParseDiscovery(file, res.ServiceList, res.ServiceListPath)
		errs = append(errs, derrs...)
		ds.Service = ""
		cfg.ServiceList = ds
	}
	sortErrors(errs)
	return cfg, slices.CompactFunc(errs, func(a, b *config.Error) bool { return *a == *b }), res.Warnings
}

// Load reads the file at path and parses it: as a Spring file if IsSpring,
// else as a native config (config.Load). err is the one from os.ReadFile, or
// config.Errors. warnings are the harmless parts of a Spring file left out.
func Load(path string) (cfg *config.Config, warnings config.Errors, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if !IsSpring(data) {
		cfg, err := config.Parse(path, data)
		return cfg, nil, err
	}
	cfg, errs, warnings := Import(path, data, os.LookupEnv)
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	return cfg, warnings, nil
}

// SpringPath returns the Spring property path that the native path came
// from, like spring.cloud.gateway.routes[0].filters[1] for
// routes[0].filters[1]; native itself when it came from nowhere in particular.
func (r *Result) SpringPath(native string) string {
	best := ""
	for n := range r.paths {
		if len(n) > len(best) && under(native, n) {
			best = n
		}
	}
	if best == "" {
		return native
	}
	return r.paths[best] + native[len(best):]
}

// covered reports whether a problem at native was already reported by the converter.
func (r *Result) covered(native string) bool {
	for n := range r.reported {
		if under(native, n) {
			return true
		}
	}
	return false
}

// under reports whether path is prefix or a path inside it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix) && (path[len(prefix)] == '.' || path[len(prefix)] == '[')
}

// relabel sets the paths kept in cfg to Spring property paths, so that the
// problems found when building the gateway name what the user wrote.
func (r *Result) relabel(cfg *config.Config) {
	if cfg == nil {
		return
	}
	for i := range cfg.DefaultFilters {
		cfg.DefaultFilters[i].Path = r.SpringPath(cfg.DefaultFilters[i].Path)
	}
	for _, rt := range cfg.Routes {
		rt.Path = r.SpringPath(rt.Path)
		for i := range rt.Predicates {
			rt.Predicates[i].Path = r.SpringPath(rt.Predicates[i].Path)
		}
		for i := range rt.Filters {
			rt.Filters[i].Path = r.SpringPath(rt.Filters[i].Path)
		}
	}
	for _, u := range cfg.Upstreams {
		u.Path = r.SpringPath(u.Path)
	}
}

// nativeKeys are the top-level keys of Sluice's config in this build.
func nativeKeys() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		if tag, ok := t.Field(i).Tag.Lookup("yaml"); ok && tag != "-" {
			name, _, _ := strings.Cut(tag, ",")
			keys[name] = true
		}
	}
	return keys
}

// isPropertiesFile reports whether the file is a .properties file: by its
// name, or, for another name, by content that is not YAML but properties.
func isPropertiesFile(file string, data []byte) bool {
	if strings.HasSuffix(strings.ToLower(file), ".properties") {
		return true
	}
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	return (err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode) && isSpringProperties(data)
}

// isSpringProperties reports whether data parses as properties with a
// spring.… property (written so, with a dot: "spring:" alone is YAML).
func isSpringProperties(data []byte) bool {
	if _, err := propertiesDocuments("", data); err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		key, _, _ := splitProperty(strings.TrimLeft(line, " \t\f"))
		if strings.HasPrefix(key, "spring.") {
			return true
		}
	}
	return false
}

// properties parses a .properties file like documents does a YAML one.
func properties(file string, data []byte) (*yaml.Node, []*yaml.Node, error) {
	docs, err := propertiesDocuments(file, data)
	if err != nil {
		return nil, nil, err
	}
	return docs[0], docs[1:], nil
}

// documents parses data: the root mapping of its first document, and the
// roots of the documents after it.
func documents(file string, data []byte) (*yaml.Node, []*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var roots []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The config package places YAML syntax errors as well as the parser allows.
			if _, errs := config.ParseAll(file, data); len(errs) > 0 {
				return nil, nil, errs[:1]
			}
			return nil, nil, config.Errors{{File: file, Line: 1, Col: 1, Msg: err.Error()}}
		}
		if len(doc.Content) > 0 && !(len(roots) > 0 && doc.Content[0].ShortTag() == "!!null") { // an empty later document
			roots = append(roots, doc.Content[0])
		}
	}
	if len(roots) == 0 || roots[0].Kind != yaml.MappingNode {
		return nil, nil, config.Errors{{File: file, Line: 1, Col: 1, Msg: "expected a mapping of Spring properties"}}
	}
	return roots[0], roots[1:], nil
}

// sortErrors orders problems by position, as the config package does.
func sortErrors(es config.Errors) {
	slices.SortStableFunc(es, func(a, b *config.Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Path, b.Path))
	})
}
