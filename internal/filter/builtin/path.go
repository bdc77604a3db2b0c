package builtin

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/internal/args"
	"github.com/sluice-gw/sluice/internal/exchange"
	"github.com/sluice-gw/sluice/internal/filter"
)

// StripPrefix=N removes the first N path segments.
var stripPrefix = filter.Factory{
	Fields: []string{"parts"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		n, err := a.Int("parts", 1)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, fmt.Errorf("parts: must be 0 or more, got %d", n)
		}
		return filter.Request(func(r *http.Request) { r.URL.Path = strip(r.URL.Path, n) }), nil
	},
}

func strip(p string, n int) string {
	rest := p
	for i := 0; i < n; i++ {
		rest = strings.TrimPrefix(rest, "/")
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		rest = rest[j:]
	}
	return rest
}

// PrefixPath=/api adds a prefix to the path.
var prefixPath = filter.Factory{
	Fields: []string{"prefix"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		pre, err := a.Required("prefix")
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(pre, "/") {
			return nil, fmt.Errorf("prefix: %q must start with /", pre)
		}
		pre = strings.TrimSuffix(pre, "/")
		return filter.Request(func(r *http.Request) { r.URL.Path = pre + r.URL.Path }), nil
	},
}

// SetPath=/foo/{segment} replaces the path, filling in the route's variables.
var setPath = filter.Factory{
	Fields: []string{"template"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		t, err := a.Required("template")
		if err != nil {
			return nil, err
		}
		return filter.Request(func(r *http.Request) {
			r.URL.Path = expand(t, exchange.From(r.Context()))
		}), nil
	},
}

// expand replaces {name} with the exchange's variables; unknown names stay as they are.
func expand(t string, ex *exchange.Exchange) string { return expandWith(t, ex, nil) }

// expandField is expand for a header value: the control bytes that a
// variable's value holds once percent-decoded (%01, %7f, a tab) are
// percent-encoded again, so that a client cannot put them into a header.
func expandField(t string, ex *exchange.Exchange) string { return expandWith(t, ex, escapeCTL) }

func expandWith(t string, ex *exchange.Exchange, esc func(string) string) string {
	if ex == nil || !strings.Contains(t, "{") {
		return t
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(t[:i])
		name := t[i+1 : i+j]
		if v, ok := ex.Var(name); ok {
			if esc != nil {
				v = esc(v)
			}
			b.WriteString(v)
		} else {
			b.WriteString(t[i : i+j+1])
		}
		t = t[i+j+1:]
	}
	b.WriteString(t)
	return b.String()
}

// RewritePath=/red/?(?<segment>.*), /$\{segment} rewrites the path with a
// Java regexp and replacement (see javaReplacement for "$\").
var rewritePath = filter.Factory{
	Fields: []string{"regexp", "replacement"},
	New: func(a args.Args, _ *filter.Env) (filter.Filter, error) {
		expr, err := a.Required("regexp")
		if err != nil {
			return nil, err
		}
		repl, err := a.String("replacement", "")
		if err != nil {
			return nil, err
		}
		rw, err := newRewriter(expr, repl)
		if err != nil {
			return nil, err
		}
		return filter.Request(func(r *http.Request) {
			p := rw.replaceAll(r.URL.Path)
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			r.URL.Path = p
		}), nil
	},
}

// escapeCTL percent-encodes the control bytes of s (below 0x20, and 0x7f).
func escapeCTL(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	if i < 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := []byte(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}
