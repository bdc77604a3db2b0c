package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mergeBomb is a "billion laughs" made of merge keys: levels anchors, each
// a mapping that merges width aliases of the one before. The decoder walks
// every merged mapping, so it would visit width^levels mappings, from a
// file of a few hundred bytes.
func mergeBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("x0: &a0 {lol: 1}\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: [", i, i)
		for j := 0; j < width; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

// A config whose aliases expand past MaxExpandedNodes is refused quickly,
// at the position of the alias that expands it, whatever field holds it.
func TestAliasExpansionIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		yaml string
		want string
	}{
		{
			desc: "nested merges into server",
			yaml: mergeBomb(7, 10) + "server: {<<: *a7}\n",
			want: "f.yaml:6:15:", // the first alias whose expansion is over the limit
		},
		{
			desc: "nested merges into a route",
			yaml: mergeBomb(7, 10) + "routes: [{<<: *a7, id: r, uri: http://h, predicates: [Path=/a]}]\n",
			want: "f.yaml:6:15:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), "its aliases expanded, holds more than") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error at %s about aliases", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusing it took %v", d)
			}
		})
	}
}

// Anchors used a reasonable number of times still decode.
func TestSharedAnchorsStillDecode(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("upstreams:\n  be: {endpoints: [\"127.0.0.1:1\"]}\nroutes:\n")
	b.WriteString("  - {id: r0, uri: lb://be, predicates: [Path=/0], filters: &f [\"AddRequestHeader=X-A, 1\", StripPrefix=1]}\n")
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&b, "  - {id: r%d, uri: lb://be, predicates: [Path=/%d], filters: *f}\n", i, i)
	}
	c, err := Parse("f.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 500 || len(c.Routes[499].Filters) != 2 {
		t.Fatalf("got %d routes", len(c.Routes))
	}
}

// A file over MaxFileSize is refused with a position, and Load does not
// read all of a huge one.
func TestConfigSizeIsBounded(t *testing.T) {
	t.Parallel()
	big := append([]byte("routes: []\n# "), bytes.Repeat([]byte("x"), MaxFileSize)...)
	_, err := Parse("f.yaml", big)
	if err == nil || !strings.Contains(err.Error(), "f.yaml:1:1: the file is") {
		t.Fatalf("got %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, append(big, bytes.Repeat([]byte("y"), 8<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := ReadFile(path)
	if err != nil || len(data) != MaxFileSize+1 {
		t.Fatalf("ReadFile read %d bytes, %v", len(data), err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("Load: %v", err)
	}
}

// FuzzParseAliases is FuzzParse's invariants seeded with alias-heavy
// documents: nested anchors, merges of merges, aliases as keys and as whole
// sections. Parse must answer every one quickly.
func FuzzParseAliases(f *testing.F) {
	f.Add([]byte(mergeBomb(3, 3) + "server: {<<: *a3}\n"))
	f.Add([]byte(mergeBomb(7, 10) + "routes: [{<<: *a7}]\n"))
	f.Add([]byte("a: &a {x: 1}\nb: &b {<<: [*a, *a]}\nc: &c {<<: [*b, *b]}\nroutes: []\n"))
	f.Add([]byte("k: &k routes\n*k : []\n"))
	f.Add([]byte("upstreams: &u {be: {endpoints: &e [\"127.0.0.1:1\"]}}\nroutes: [{id: r, uri: lb://be, predicates: [Path=/a], metadata: {a: *e, b: *u}}]\n"))
	f.Add([]byte("server: &s {listen: \"127.0.0.1:1\", listeners: [{name: a, listen: \"127.0.0.1:2\", <<: *s}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		c, err := Parse("f.yaml", data)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse took %v on %d bytes", d, len(data))
		}
		if (c == nil) == (err == nil) {
			t.Fatalf("Config %v with error %v", c != nil, err)
		}
	})
}
