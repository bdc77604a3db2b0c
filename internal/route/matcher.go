package route

// PathMatcher compiles a pattern of the Path predicate ("/api/**",
// "/users/{id}") into a function that reports whether a clean path (see
// CleanPath) matches it. It serves config that selects by path outside a
// route, such as the global CORS block.
func PathMatcher(pattern string) (func(path string) bool, error) {
	p, err := compilePathPattern(pattern, true)
	if err != nil {
		return nil, err
	}
	return func(path string) bool {
		var v Vars
		return p.match(path, &v)
	}, nil
}
