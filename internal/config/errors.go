package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// An Error is one problem at one position in a config file.
type Error struct {
	File      string
	Line, Col int
	Path      string // like "routes[0].predicates[1]"; "" for the whole file
	Msg       string
}

// Error returns "FILE:LINE:COL: PATH: MSG", or "FILE:LINE:COL: MSG" without a path.
func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Path, e.Msg)
}

func newError(file string, p Pos, path, format string, a ...any) *Error {
	return &Error{File: file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, a...)}
}

// Errors is every problem found in a config file.
type Errors []*Error

// Error returns one line per problem, sorted by line, then column.
func (es Errors) Error() string {
	sorted := slices.Clone(es)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
		)
	})
}
