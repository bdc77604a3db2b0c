package config

import (
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Limits on what a config file may cost to read. The decoder follows every
// alias, so a few kilobytes of nested aliases (a "billion laughs") would
// expand to billions of values; a file is refused before it is walked.
const (
	// MaxFileSize is the largest config file read, in bytes.
	MaxFileSize = 4 << 20
	// MaxExpandedNodes bounds the YAML nodes of a document with every alias
	// expanded: about a hundred times the largest real configs.
	MaxExpandedNodes = 1 << 18
)

// tooLarge reports a file over MaxFileSize.
func (d *decoder) tooLarge(size int) bool {
	if size <= MaxFileSize {
		return false
	}
	d.errorf(Pos{Line: 1, Col: 1}, "", "the file is %d bytes, over the limit of %d", size, MaxFileSize)
	return true
}

// tooManyNodes reports a document that expands, following its aliases, to
// more than MaxExpandedNodes nodes, at the alias that expands the most.
func (d *decoder) tooManyNodes(root *yaml.Node) bool {
	sizes := map[*yaml.Node]int{}
	if expandedSize(root, sizes) <= MaxExpandedNodes {
		return false
	}
	n := root
	for n.Kind != yaml.AliasNode && len(n.Content) > 0 {
		big := n.Content[0]
		for _, c := range n.Content[1:] {
			if sizes[c] > sizes[big] {
				big = c
			}
		}
		n = big
	}
	d.errorf(pos(n), "", "yaml: the document, its aliases expanded, holds more than %d values", MaxExpandedNodes)
	return true
}

// expandedSize counts the nodes under n, aliases expanded, remembering each
// node's count in sizes so that a shared anchor is counted once per use but
// walked once. Counts saturate just past MaxExpandedNodes; a node met again
// while it is being counted (a cycle) counts as over the limit.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int) int {
	if s, ok := sizes[n]; ok {
		if s < 0 {
			return MaxExpandedNodes + 1
		}
		return s
	}
	sizes[n] = -1
	s := 1
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		s += expandedSize(n.Alias, sizes)
	}
	for _, c := range n.Content {
		s += expandedSize(c, sizes)
		if s > MaxExpandedNodes {
			s = MaxExpandedNodes + 1
			break
		}
	}
	s = min(s, MaxExpandedNodes+1)
	sizes[n] = s
	return s
}

// ReadFile reads the config file at path, but no more than one byte past
// MaxFileSize: enough for Parse to refuse it without holding all of it.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}
