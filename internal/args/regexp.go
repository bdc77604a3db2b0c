package args

import (
	"fmt"
	"regexp"
	"regexp/syntax"
)

// Bounds on a regexp written in a config. Go's regexps run in time linear in
// their input, but the factor is the size of their program: a config's
// regexp must stay small, and is never run on more input than MatchBudget
// allows for its size (a longer value does not match).
const (
	// MaxRegexpInsts bounds the compiled program of a regexp.
	MaxRegexpInsts = 4000
	// MatchBudget bounds the work of one match: input bytes × program
	// instructions (about 10 ms on one core at worst).
	MatchBudget = 1 << 22
)

// CompileRegexp compiles expr, refusing a program over MaxRegexpInsts.
// maxInput is the longest input the regexp may be run on.
func CompileRegexp(expr string) (re *regexp.Regexp, maxInput int, err error) {
	parsed, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, 0, err
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, 0, err
	}
	if n := len(prog.Inst); n > MaxRegexpInsts {
		return nil, 0, fmt.Errorf("regexp too large: %d instructions, at most %d", n, MaxRegexpInsts)
	}
	if re, err = regexp.Compile(expr); err != nil {
		return nil, 0, err
	}
	return re, MatchBudget / max(len(prog.Inst), 1), nil
}
