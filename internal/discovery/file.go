package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// File reads the endpoints from a YAML or JSON file that a tool outside
// Sluice maintains, and follows it: the file is polled (modification time
// and size) every Interval. A file that cannot be read or parsed is logged
// and the last good set stays in force. The format:
//
//	endpoints:
//	  - 10.0.0.1:8080                    # or
//	  - {address: 10.0.0.2:8080, weight: 2, draining: true}
//
// Writers should replace the file atomically (write, then rename).
type File struct {
	Path     string
	Interval time.Duration // default 1s
	Log      *slog.Logger
	Stats    *Stats
}

func (f *File) stats() *Stats { return f.Stats }

// Run polls the file until ctx ends.
func (f *File) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	interval := f.Interval
	if interval <= 0 {
		interval = time.Second
	}
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	out := &dedup{publish: publish, stats: f.Stats}
	var seen fileStamp
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := stamp(f.Path)
		switch {
		case err != nil:
			f.Stats.failQuiet(err)
			if first || st != seen {
				log.Error("discovery file unreadable; keeping the last endpoints", "file", f.Path, "error", err.Error())
			}
			seen = st
		case st != seen:
			seen = st
			if specs, err := ReadFile(f.Path); err != nil {
				f.Stats.failQuiet(err)
				log.Error("discovery file rejected; keeping the last endpoints", "file", f.Path, "error", err.Error())
			} else {
				f.Stats.okQuiet()
				out.send(specs)
			}
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type fileStamp struct {
	mod  time.Time
	size int64
	err  string
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: err.Error()}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// fileEndpoint is one entry of an endpoints file.
type fileEndpoint struct {
	Address  string `yaml:"address"`
	Weight   int    `yaml:"weight"`
	Draining bool   `yaml:"draining"`
}

func (e *fileEndpoint) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		e.Address = n.Value
		return nil
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "address" && k.Value != "weight" && k.Value != "draining" {
				return fmt.Errorf("line %d: unknown key %q (known: address, weight, draining)", k.Line, k.Value)
			}
		}
	}
	type plain fileEndpoint
	return n.Decode((*plain)(e))
}

// ReadFile parses an endpoints file (see File). Unknown keys, bad addresses,
// weights outside 1..1000 and duplicates are errors, with their line.
func ReadFile(path string) ([]endpoint.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Endpoints []fileEndpoint `yaml:"endpoints"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var node yaml.Node
	_ = yaml.Unmarshal(data, &node)
	specs := make([]endpoint.Spec, 0, len(doc.Endpoints))
	seen := map[string]bool{}
	for i, e := range doc.Endpoints {
		where := fmt.Sprintf("%s: endpoints[%d]", path, i)
		if line := itemLine(&node, i); line > 0 {
			where = path + ":" + strconv.Itoa(line) + ": endpoints[" + strconv.Itoa(i) + "]"
		}
		host, port, err := net.SplitHostPort(e.Address)
		if err == nil && host == "" {
			err = errors.New("missing host")
		}
		if err == nil {
			if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 {
				err = fmt.Errorf("port %q is not in 1..65535", port)
			}
		}
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %q is not a valid address: %v", where, e.Address, err)
		case seen[e.Address]:
			return nil, fmt.Errorf("%s: duplicate endpoint %q", where, e.Address)
		case e.Weight < 0 || e.Weight > 1000:
			return nil, fmt.Errorf("%s: weight must be between 1 and 1000, got %d", where, e.Weight)
		}
		seen[e.Address] = true
		specs = append(specs, endpoint.Spec{Addr: e.Address, Weight: max(e.Weight, 1), Draining: e.Draining})
	}
	return specs, nil
}

// itemLine returns the line of endpoints[i] in a parsed document, or 0.
func itemLine(doc *yaml.Node, i int) int {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return 0
	}
	m := doc.Content[0]
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == "endpoints" && m.Content[k+1].Kind == yaml.SequenceNode && i < len(m.Content[k+1].Content) {
			return m.Content[k+1].Content[i].Line
		}
	}
	return 0
}
