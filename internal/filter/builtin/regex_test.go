package builtin

import "testing"

func TestJavaRewrite(t *testing.T) {
	tests := []struct {
		name, expr, repl, in, want string
	}{
		{name: "named group with Spring's $\\ escape", expr: `/red/?(?<segment>.*)`, repl: `/$\{segment}`, in: "/red/blue", want: "/blue"},
		{name: "named group written the Java way", expr: `/red/?(?<segment>.*)`, repl: `/${segment}`, in: "/red/blue", want: "/blue"},
		{name: "numbered group", expr: `/api/(.*)`, repl: `/v2/$1`, in: "/api/x", want: "/v2/x"},
		{name: "group number followed by a digit", expr: `/(a)`, repl: `/$10`, in: "/a", want: "/a0"},
		{name: "two-digit group", expr: `(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)`, repl: `$10`, in: "abcdefghij", want: "j"},
		{name: "escaped dollar", expr: `/price`, repl: `/\$5`, in: "/price", want: "/$5"},
		{name: "escaped backslash", expr: `x`, repl: `\\`, in: "x", want: `\`},
		{name: "every match replaced", expr: `password=[^&]+`, repl: `password=***`, in: "a=1&password=x&password=y", want: "a=1&password=***&password=***"},
		{name: "no match unchanged", expr: `/red/(.*)`, repl: `/$1`, in: "/blue", want: "/blue"},
		{name: "lookalike (?<= is not a group", expr: `a(?<=b)`, repl: ``, in: "", want: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rw, err := newRewriter(tc.expr, tc.repl)
			if tc.want == "error" {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rw.replaceAll(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []struct{ expr, repl string }{{`(a)`, `$2`}, {`(a)`, `${x}`}, {`(a)`, `$`}, {`(a)`, `\`}, {`(a)`, `${a`}} {
		if _, err := newRewriter(bad.expr, bad.repl); err == nil {
			t.Errorf("%q → %q: no error", bad.expr, bad.repl)
		}
	}
}
